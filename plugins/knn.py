"""``knn``: class-balanced k-nearest neighbours on the 57 GTZAN features, the original
study's simple model (estimator: :class:`genre_tagger_plugins.estimators.knn.BalancedKNN`)."""

from __future__ import annotations

from genre_tagger.hookspecs import ModelSpec, hookimpl


@hookimpl
def genre_tagger_models() -> list[ModelSpec]:
    return [ModelSpec("knn", ("gtzan57",), "genre_tagger_plugins.estimators.knn:BalancedKNN",
                      description="standardised k-nearest neighbours, k and weighting chosen by grouped CV, "
                                  "class-balanced votes")]
