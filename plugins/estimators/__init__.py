"""The scikit-learn estimators behind the built-in model plugins.

The plugin modules (``knn``, ``lightgbm_model``, ``logreg``) only declare
:class:`~genre_tagger.hookspecs.ModelSpec` values naming these classes, so that loading
the plugins imports no machine-learning library; a class here is imported when a model
of it is first fitted or loaded.
"""
