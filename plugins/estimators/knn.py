"""Standardise, then a class-balanced k-nearest-neighbour vote.

The original study's best simple model was KNN with k=1 on standardised features. Here
``k`` and the neighbour weighting are chosen by grouped cross-validation inside ``fit``
(:class:`genre_tagger.selection.GroupedFolds`: segments of one clip never sit on both
sides), scored by track balanced accuracy.

Class imbalance: each neighbour's vote is divided by the training frequency of its
class, so a genre with 20 clips weighs as much as one with 100 (the KNN analogue of
``class_weight="balanced"``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import NearestNeighbors

from genre_tagger.hookspecs import ModelState
from genre_tagger.selection import GroupedFolds, track_balanced_accuracy
from genre_tagger_plugins.estimators.standardise import fit_standardiser, standardise


class BalancedKNN(ClassifierMixin, BaseEstimator):
    """Standardise, then a class-balanced k-nearest-neighbour vote.

    Parameters
    ----------
    n_neighbors : candidate values of k; the best by grouped CV is kept (``n_neighbors_``).
    weights : candidate weightings: "uniform", or "distance" (each vote weighs 1/distance).
    cv : number of grouped folds used to choose them.
    """

    def __init__(self, n_neighbors=(1, 3, 5, 9, 15, 25), weights=("uniform", "distance"), cv: int = 5):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.cv = cv

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "BalancedKNN":
        X, y = np.asarray(X, dtype=float), np.asarray(y).astype(str)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        candidates = [(int(k), str(w)) for k in np.atleast_1d(self.n_neighbors) for w in np.atleast_1d(self.weights)
                      if not (k == 1 and w == "distance")]
        self.scores_ = self._grouped_scores(X, y, groups, candidates) if len(candidates) > 1 else {}
        self.n_neighbors_, self.weights_ = (
            max(candidates, key=lambda c: self.scores_[_label(*c)]) if self.scores_ else candidates[0]
        )
        self._fit_final(X, y)
        return self

    def _grouped_scores(self, X, y, groups, candidates) -> dict[str, float]:
        """Track balanced accuracy of every (k, weights) candidate under grouped CV.

        One neighbour search per fold (for the largest k) serves every candidate.
        """
        classes = np.unique(y)
        proba = {_label(*c): np.zeros((len(y), len(classes))) for c in candidates}
        k_max = max(k for k, _ in candidates)
        for train, test in GroupedFolds(self.cv).split(X, y, groups):
            fold = BalancedKNN()
            fold.n_neighbors_, fold.weights_ = k_max, "uniform"
            fold._fit_final(X[train], y[train])
            distances, neighbours = fold._neighbours(X[test])
            columns = np.searchsorted(classes, fold.classes_)
            for k, w in candidates:
                votes = fold._votes(distances[:, :k], neighbours[:, :k], w)
                proba[_label(k, w)][np.ix_(test, columns)] = votes / votes.sum(axis=1, keepdims=True)
        return {label: track_balanced_accuracy(y, p, classes, groups) for label, p in proba.items()}

    def _fit_final(self, X: np.ndarray, y: np.ndarray) -> None:
        self.standardiser_ = fit_standardiser(X)
        self.classes_, counts = np.unique(y, return_counts=True)
        self.class_weight_ = counts.sum() / (len(counts) * counts)
        self.X_ = standardise(X, self.standardiser_)
        self.y_ = np.searchsorted(self.classes_, y)
        self.index_ = NearestNeighbors(n_neighbors=min(self.n_neighbors_, len(y))).fit(self.X_)

    def _neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.index_.kneighbors(standardise(X, self.standardiser_))

    def _votes(self, distances: np.ndarray, neighbours: np.ndarray, weights: str) -> np.ndarray:
        """Class-weighted votes ``[n, n_classes]`` of the given neighbours."""
        if weights == "distance":
            with np.errstate(divide="ignore"):
                vote = 1.0 / distances
            exact = np.isinf(vote)
            # as in scikit-learn: an exact match outvotes every other neighbour
            vote[exact.any(axis=1)] = exact[exact.any(axis=1)]
        else:
            vote = np.ones_like(distances)
        labels = self.y_[neighbours]
        votes = np.zeros((len(distances), len(self.classes_)))
        for c in range(len(self.classes_)):
            votes[:, c] = (vote * (labels == c)).sum(axis=1)
        return votes * self.class_weight_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n_segments, n_classes]``: normalised class-weighted votes."""
        votes = self._votes(*self._neighbours(X), self.weights_)
        return votes / votes.sum(axis=1, keepdims=True)

    def save(self) -> ModelState:
        return ModelState(
            params={"n_neighbors": int(self.n_neighbors_), "weights": self.weights_, "cv_scores": self.scores_},
            arrays={
                "classes": self.classes_.astype(str),
                **self.standardiser_,
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
        model.standardiser_ = {"scaler_mean": state.arrays["scaler_mean"], "scaler_scale": state.arrays["scaler_scale"]}
        model.X_, model.y_ = state.arrays["X"].astype(float), state.arrays["y"].astype(int)
        model.index_ = NearestNeighbors(n_neighbors=min(model.n_neighbors_, len(model.y_))).fit(model.X_)
        return model


def _label(k: int, weights: str) -> str:
    return f"k={k},{weights}"
