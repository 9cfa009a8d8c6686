"""The built-in plugins of genre-tagger, installed as the ``genre_tagger_plugins`` package.

Each top-level module here is an ordinary pluggy plugin registered through the
``genre_tagger`` entry-point group in ``pyproject.toml``, exactly as a third-party plugin
would be: feature extractors (``gtzan57``, ``timbre_rhythm``, ``hog_mel``, ``musicnn``)
and models (``knn``, ``lightgbm_model``, ``logreg``), whose scikit-learn estimators are in
:mod:`genre_tagger_plugins.estimators`.
"""
