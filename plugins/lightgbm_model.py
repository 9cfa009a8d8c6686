"""Gradient-boosted trees (LightGBM): ``lightgbm`` on the 57 GTZAN features, as the
original study, and ``lightgbm-plus`` on those and the ``timbre-rhythm`` features
(estimator: :class:`genre_tagger_plugins.estimators.lightgbm.LightGBMGenreModel`)."""

from __future__ import annotations

from genre_tagger.hookspecs import ModelSpec, hookimpl

ESTIMATOR = "genre_tagger_plugins.estimators.lightgbm:LightGBMGenreModel"


@hookimpl
def genre_tagger_models() -> list[ModelSpec]:
    return [
        ModelSpec("lightgbm", ("gtzan57",), ESTIMATOR,
                  description="LightGBM (10 leaves, depth 10, lr 0.1, 1000 trees), balanced class weights"),
        ModelSpec("lightgbm-plus", ("gtzan57", "timbre-rhythm"), ESTIMATOR, description="the same on gtzan57 + timbre-rhythm"),
    ]
