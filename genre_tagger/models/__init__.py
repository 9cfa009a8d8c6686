"""Features -> probabilities -> votes: what predicts (:mod:`.predictor`), single models'
bundles (:mod:`.bundle`) and ensembles (:mod:`.ensemble`), the models of a folder and the
default (:mod:`.catalogue`), the vote (:mod:`.voting`), and predictions for many files,
cached (:mod:`.predicting`)."""
