"""genre-tagger: listen to a music library and tag every track with its genre.

The package reads in the order data flows::

    files -> audio -> segments -> features -> probabilities -> votes -> tags / report

- the plugin API, at the top: :mod:`~genre_tagger.hookspecs` (the contract),
  :mod:`~genre_tagger.plugins` (the registry), :mod:`~genre_tagger.segments` (3-second
  segments), :mod:`~genre_tagger.spectrum` (the spectra a batch of segments shares),
  :mod:`~genre_tagger.selection` (grouped folds and the score models are chosen by);
- :mod:`genre_tagger.pipeline` -- files -> features: decoding, analysis, the cache, and
  where analysis runs (worker processes or a Dask cluster);
- :mod:`genre_tagger.models` -- features -> probabilities -> votes: model bundles,
  ensembles, the vote, the catalogue of trained models and the default rule;
- :mod:`genre_tagger.tagging` -- votes -> tags / report: the library walk, tag writes,
  the journal and undo, the scan, the CSV report;
- :mod:`genre_tagger.training` -- labelled clips -> models and honest scores (``retrain``);
- :mod:`genre_tagger.evaluation` -- a user's own labels -> scores (``evaluate``);
- :mod:`genre_tagger.cli` and :mod:`genre_tagger.display` -- the command line, a thin
  shell that calls the library and prints what it returns.
"""

__version__ = "0.1.0"
