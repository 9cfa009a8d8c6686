"""Standardise, then LightGBM multiclass trees with balanced class weights.

Hyper-parameters start from the original study's best model: 10 leaves, depth 10,
learning rate 0.1, 1000 trees. Class imbalance is handled with balanced class weights:
each segment is weighted by ``n_samples / (n_classes * n_samples_of_its_class)``, so
every genre carries the same total weight in the loss.
"""

from __future__ import annotations

import lightgbm
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from genre_tagger.hookspecs import ModelState
from genre_tagger_plugins.estimators.standardise import fit_standardiser, standardise

#: the parameters a bundle records, and restores on load
SAVED = ("num_leaves", "max_depth", "learning_rate", "n_estimators", "class_weight")


class LightGBMGenreModel(ClassifierMixin, BaseEstimator):
    """Standardise, then LightGBM multiclass trees with balanced class weights."""

    def __init__(self, num_leaves: int = 10, max_depth: int = 10, learning_rate: float = 0.1, n_estimators: int = 1000,
                 class_weight: str | None = "balanced", random_state: int = 0, n_jobs: int | None = None):
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "LightGBMGenreModel":
        y = np.asarray(y).astype(str)
        self.standardiser_ = fit_standardiser(X)
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
        classifier.fit(standardise(X, self.standardiser_), np.searchsorted(self.classes_, y))
        self.booster_ = classifier.booster_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n_segments, n_classes]``."""
        proba = self.booster_.predict(standardise(X, self.standardiser_))
        if proba.ndim == 1:  # two classes: LightGBM's binary objective gives P(second class)
            proba = np.column_stack([1 - proba, proba])
        return proba

    def save(self) -> ModelState:
        return ModelState(
            params={name: getattr(self, name) for name in SAVED},
            arrays={"classes": self.classes_.astype(str), **self.standardiser_},
            texts={"booster": self.booster_.model_to_string()},
        )

    @classmethod
    def load(cls, state: ModelState) -> "LightGBMGenreModel":
        model = cls(**{k: v for k, v in state.params.items() if k in SAVED})
        model.classes_ = state.arrays["classes"].astype(str)
        model.standardiser_ = {"scaler_mean": state.arrays["scaler_mean"], "scaler_scale": state.arrays["scaler_scale"]}
        model.booster_ = lightgbm.Booster(model_str=state.texts["booster"])
        return model
