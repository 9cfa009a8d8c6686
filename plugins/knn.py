"""k-nearest neighbours on the 57 GTZAN features, with class-balanced votes.

The original study's best simple model was KNN with k=1 on standardised features. Here
``k`` and the neighbour weighting are chosen by grouped cross-validation inside
``fit`` (segments of one clip never sit on both sides), scored by balanced accuracy.

Class imbalance: each neighbour's vote is divided by the training frequency of its
class, so a genre with 20 clips weighs as much as one with 100 (the KNN analogue of
``class_weight="balanced"``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from genre_tagger.hookspecs import ModelState, hookimpl


class BalancedKNN:
    """Standardise, then a class-balanced k-nearest-neighbour vote.

    Parameters
    ----------
    n_neighbors : candidate values of k; the best by grouped CV is kept (``n_neighbors_``).
    weights : candidate weightings ("uniform", "distance").
    cv : number of grouped folds used to choose them.
    """

    name: ClassVar[str] = "knn"
    feature_extractor: ClassVar[str] = "gtzan57"
    version: ClassVar[str] = "1"

    def __init__(self, n_neighbors=(1, 3, 5, 9, 15, 25), weights=("uniform", "distance"), cv: int = 5):
        self.n_neighbors = tuple(n_neighbors)
        self.weights = tuple(weights)
        self.cv = cv

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "BalancedKNN":
        X, y = np.asarray(X, dtype=float), np.asarray(y).astype(str)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        self.scores_ = {}
        candidates = [(k, w) for k in self.n_neighbors for w in self.weights if not (k == 1 and w == "distance")]
        if len(candidates) > 1:
            for k, w in candidates:
                self.scores_[f"k={k},{w}"] = self._grouped_score(X, y, groups, k, w)
            best = max(candidates, key=lambda c: self.scores_[f"k={c[0]},{c[1]}"])
        else:
            best = candidates[0]
        self.n_neighbors_, self.weights_ = best
        self._fit_final(X, y)
        return self

    def _grouped_score(self, X, y, groups, k: int, weights: str) -> float:
        from sklearn.metrics import balanced_accuracy_score

        n_splits = min(self.cv, len(np.unique(groups)))
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=0)
        predictions = np.empty(len(y), dtype=object)
        for train, test in folds.split(X, y, groups):
            model = BalancedKNN(n_neighbors=(k,), weights=(weights,))
            model.n_neighbors_, model.weights_ = k, weights
            model._fit_final(X[train], y[train])
            predictions[test] = model.classes_[model.predict_proba(X[test]).argmax(axis=1)]
        return float(balanced_accuracy_score(y, predictions.astype(str)))

    def _fit_final(self, X: np.ndarray, y: np.ndarray) -> None:
        self.scaler_ = StandardScaler().fit(X)
        self.classes_, counts = np.unique(y, return_counts=True)
        self.class_weight_ = counts.sum() / (len(counts) * counts)
        self.X_ = self.scaler_.transform(X)
        self.y_ = np.searchsorted(self.classes_, y)
        k = min(self.n_neighbors_, len(y))
        self.knn_ = KNeighborsClassifier(n_neighbors=k, weights=self.weights_).fit(self.X_, self.y_)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n_segments, n_classes]`` from class-weighted neighbour votes."""
        raw = np.zeros((len(X), len(self.classes_)))
        raw[:, self.knn_.classes_] = self.knn_.predict_proba(self.scaler_.transform(np.asarray(X, dtype=float)))
        weighted = raw * self.class_weight_
        return weighted / weighted.sum(axis=1, keepdims=True)

    def save(self) -> ModelState:
        return ModelState(
            params={"n_neighbors": int(self.n_neighbors_), "weights": self.weights_, "cv_scores": self.scores_},
            arrays={
                "classes": self.classes_.astype(str),
                "scaler_mean": self.scaler_.mean_,
                "scaler_scale": self.scaler_.scale_,
                "X": self.X_.astype(np.float32),
                "y": self.y_.astype(np.int16),
            },
        )

    @classmethod
    def load(cls, state: ModelState) -> "BalancedKNN":
        model = cls(n_neighbors=(state.params["n_neighbors"],), weights=(state.params["weights"],))
        model.n_neighbors_, model.weights_ = state.params["n_neighbors"], state.params["weights"]
        model.scores_ = state.params.get("cv_scores", {})
        model.classes_ = state.arrays["classes"].astype(str)
        counts = np.bincount(state.arrays["y"], minlength=len(model.classes_))
        model.class_weight_ = counts.sum() / (len(counts) * np.maximum(counts, 1))
        model.scaler_ = StandardScaler()
        model.scaler_.mean_, model.scaler_.scale_ = state.arrays["scaler_mean"], state.arrays["scaler_scale"]
        model.scaler_.var_ = model.scaler_.scale_**2
        model.scaler_.n_features_in_ = len(model.scaler_.mean_)
        model.X_, model.y_ = state.arrays["X"].astype(float), state.arrays["y"].astype(int)
        model.knn_ = KNeighborsClassifier(n_neighbors=model.n_neighbors_, weights=model.weights_).fit(model.X_, model.y_)
        return model


@hookimpl
def genre_tagger_models():
    return [BalancedKNN]
