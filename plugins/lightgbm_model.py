"""Gradient-boosted trees (LightGBM): ``lightgbm`` on the 57 GTZAN features, as the
original study, and ``lightgbm-plus`` on those and the ``timbre-rhythm`` features.

Hyper-parameters start from the original study's best model: 10 leaves, depth 10,
learning rate 0.1, 1000 trees. Class imbalance is handled with balanced class weights:
each segment is weighted by ``n_samples / (n_classes * n_samples_of_its_class)``, so
every genre carries the same total weight in the loss.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from genre_tagger.hookspecs import ModelState, hookimpl

# LightGBM and scikit-learn are imported where they are used: every command loads this
# plugin (to list the registered models), and importing them takes about 1 s.


class LightGBMGenreModel:
    """Standardise, then LightGBM multiclass trees with balanced class weights."""

    name: ClassVar[str] = "lightgbm"
    feature_extractors: ClassVar[tuple[str, ...]] = ("gtzan57",)
    version: ClassVar[str] = "1"

    def __init__(
        self,
        num_leaves: int = 10,
        max_depth: int = 10,
        learning_rate: float = 0.1,
        n_estimators: int = 1000,
        class_weight: str | None = "balanced",
        random_state: int = 0,
        n_jobs: int | None = None,
    ):
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "LightGBMGenreModel":
        import lightgbm
        from sklearn.preprocessing import StandardScaler

        y = np.asarray(y).astype(str)
        self.scaler_ = StandardScaler().fit(X)
        self.classes_ = np.unique(y)
        classifier = lightgbm.LGBMClassifier(
            num_leaves=self.num_leaves,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            n_estimators=self.n_estimators,
            class_weight=self.class_weight,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=-1,
        )
        classifier.fit(self.scaler_.transform(X), np.searchsorted(self.classes_, y))
        self.booster_ = classifier.booster_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n_segments, n_classes]``."""
        proba = self.booster_.predict(self.scaler_.transform(np.asarray(X, dtype=float)))
        if proba.ndim == 1:  # two classes: LightGBM's binary objective gives P(second class)
            proba = np.column_stack([1 - proba, proba])
        return proba

    def save(self) -> ModelState:
        from genre_tagger.scaling import scaler_arrays

        return ModelState(
            params={
                "num_leaves": self.num_leaves,
                "max_depth": self.max_depth,
                "learning_rate": self.learning_rate,
                "n_estimators": self.n_estimators,
                "class_weight": self.class_weight,
            },
            arrays={
                "classes": self.classes_.astype(str),
                **scaler_arrays(self.scaler_),
            },
            texts={"booster": self.booster_.model_to_string()},
        )

    @classmethod
    def load(cls, state: ModelState) -> "LightGBMGenreModel":
        import lightgbm

        from genre_tagger.scaling import scaler_from_arrays

        params = {k: v for k, v in state.params.items() if k in ("num_leaves", "max_depth", "learning_rate", "n_estimators", "class_weight")}
        model = cls(**params)
        model.classes_ = state.arrays["classes"].astype(str)
        model.scaler_ = scaler_from_arrays(state.arrays)
        model.booster_ = lightgbm.Booster(model_str=state.texts["booster"])
        return model


class LightGBMPlus(LightGBMGenreModel):
    """The same trees on ``gtzan57`` + ``timbre-rhythm``."""

    name: ClassVar[str] = "lightgbm-plus"
    feature_extractors: ClassVar[tuple[str, ...]] = ("gtzan57", "timbre-rhythm")


@hookimpl
def genre_tagger_models():
    return [LightGBMGenreModel, LightGBMPlus]
