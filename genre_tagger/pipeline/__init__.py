"""Files -> features: decoding (:mod:`.audio`), one file's analysis (:mod:`.analysis`),
where many files are analysed (:mod:`.dispatch`: :mod:`.workers` here, :mod:`.cluster`
on Dask), and the cache of features and predictions (:mod:`.cache`)."""
