"""Standardise, optionally PCA, class-balanced multinomial logistic regression.

Per segment:

1. **standardise** -- every column to zero mean and unit variance;
2. **PCA** (``n_components``) -- the leading principal components of the standardised
   rows (not whitened);
3. **LogisticRegression** -- multinomial, L2, lbfgs, with ``class_weight="balanced"``
   (the default; ``None`` turns it off, as the ablation does): balanced weights give
   each segment the weight ``n_samples / (n_classes * n_samples_of_its_class)``, so every
   genre carries the same total weight in the loss instead of the large ones dominating.

The regularisation ``C`` is chosen inside :meth:`LogReg.fit` by inner grouped CV over
the training rows (:class:`genre_tagger.selection.GroupedFolds`: segments of one clip
never on both sides), scored by track balanced accuracy, ties to the smaller ``C``.

The learned state is plain arrays (standardiser mean/scale, PCA mean/components, weights
and intercepts, classes as strings) and prediction is numpy arithmetic on them, so a
saved model predicts exactly as the fitted one and a bundle never holds a pickle.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from genre_tagger.hookspecs import ModelState
from genre_tagger.selection import GroupedFolds, track_balanced_accuracy
from genre_tagger_plugins.estimators.standardise import fit_standardiser, standardise

#: logreg's few hundred columns want weaker regularisation than hog-logreg's 1176
C_CANDIDATES = (0.01, 0.03, 0.1, 0.3)


class LogReg(ClassifierMixin, BaseEstimator):
    """Standardise, optionally PCA, class-balanced multinomial logistic regression.

    Parameters
    ----------
    n_components : PCA components kept (capped at the number of rows and features);
        ``None`` or ``0`` for no PCA.
    C : candidate inverse L2 strengths (a number or a sequence); with more than one, the
        best by inner grouped CV is kept (``C_``, scores in ``scores_``).
    cv : number of inner grouped folds used to choose ``C``.
    max_iter : lbfgs iterations.
    random_state : seed of the randomised PCA solver and of the inner folds.
    class_weight : ``"balanced"`` or ``None``.

    BLAS runs on one thread during ``fit``: the matrices are small, and two OpenBLAS
    thread pools spinning against other work on a shared machine made lbfgs up to 100x
    slower.
    """

    def __init__(self, n_components: int | None = None, C=C_CANDIDATES, cv: int = 3, max_iter: int = 3000,
                 random_state: int = 0, class_weight: str | None = "balanced"):
        self.n_components = n_components
        self.C = C
        self.cv = cv
        self.max_iter = max_iter
        self.random_state = random_state
        self.class_weight = class_weight

    @property
    def candidates(self) -> tuple[float, ...]:
        """The candidate values of ``C``."""
        return tuple(float(c) for c in np.atleast_1d(self.C))

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "LogReg":
        """Fit on ``X [n_segments, n_features]``, genres ``y`` and clip ids ``groups``."""
        X, y = np.asarray(X, dtype=float), np.asarray(y).astype(str)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        self.scores_: dict[str, float] = {}
        with threadpool_limits(limits=1, user_api="blas"):
            if len(self.candidates) > 1:
                self.scores_ = self._grouped_scores(X, y, groups)
                # ties go to the smaller C (stronger regularisation)
                self.C_ = max(sorted(self.candidates), key=lambda c: self.scores_[f"C={c:g}"])
            else:
                self.C_ = self.candidates[0]
            self._fit_logreg(self._fit_transform(X), y, self.C_)
        return self

    def _grouped_scores(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, float]:
        """Track balanced accuracy of each candidate ``C`` by inner grouped CV (pooled folds)."""
        classes = np.unique(y)
        proba = {c: np.zeros((len(y), len(classes))) for c in self.candidates}
        for train, test in GroupedFolds(self.cv, self.random_state).split(X, y, groups):
            # standardiser and PCA once per fold, shared by every C
            model = clone(self)
            Z_train = model._fit_transform(X[train])
            Z_test = model._transform(X[test])
            for c in self.candidates:
                model._fit_logreg(Z_train, y[train], c)
                columns = np.searchsorted(classes, model.classes_)
                proba[c][np.ix_(test, columns)] = model._proba(Z_test)
        return {f"C={c:g}": track_balanced_accuracy(y, proba[c], classes, groups) for c in self.candidates}

    def _fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit the standardiser and PCA on ``X``; return the transformed rows."""
        self.standardiser_ = fit_standardiser(X)
        Z = standardise(X, self.standardiser_)
        k = min(self.n_components or 0, Z.shape[0], Z.shape[1])
        if k > 0:
            pca = PCA(n_components=k, svd_solver="auto", random_state=self.random_state).fit(Z)
            self.pca_mean_, self.pca_components_ = pca.mean_, pca.components_
        else:
            self.pca_mean_ = self.pca_components_ = None
        return self._project(Z)

    def _fit_logreg(self, Z: np.ndarray, y: np.ndarray, C: float) -> None:
        self.classes_ = np.unique(y)
        logreg = LogisticRegression(C=C, class_weight=self.class_weight, max_iter=self.max_iter)
        logreg.fit(Z, np.searchsorted(self.classes_, y))
        self.coef_, self.intercept_ = logreg.coef_, logreg.intercept_

    # --- predicting ------------------------------------------------------------------------

    def _project(self, Z: np.ndarray) -> np.ndarray:
        if self.pca_components_ is None:
            return Z
        return (Z - self.pca_mean_) @ self.pca_components_.T

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise and project rows ``[n, n_features]`` -> ``[n, n_components]``."""
        return self._project(standardise(X, self.standardiser_))

    def _proba(self, Z: np.ndarray) -> np.ndarray:
        """Softmax of the linear scores (the logistic function when there are two classes)."""
        scores = Z @ self.coef_.T + self.intercept_
        if self.coef_.shape[0] == 1:  # binary: sklearn keeps one row, for the second class
            scores = np.hstack([np.zeros_like(scores), scores])
        scores -= scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n_segments, n_classes]`` of feature rows ``X [n_segments, n_features]``."""
        return self._proba(self._transform(X))

    # --- state -----------------------------------------------------------------------------

    def save(self) -> ModelState:
        arrays = {"classes": self.classes_.astype(str), **self.standardiser_, "coef": self.coef_,
                  "intercept": self.intercept_}
        if self.pca_components_ is not None:
            arrays["pca_mean"], arrays["pca_components"] = self.pca_mean_, self.pca_components_
        return ModelState(
            params={
                "n_components": self.n_components,
                "C": float(self.C_),
                "C_candidates": list(self.candidates),
                "cv": self.cv,
                "max_iter": self.max_iter,
                "class_weight": self.class_weight,
                "cv_scores": self.scores_,
            },
            arrays=arrays,
        )

    @classmethod
    def load(cls, state: ModelState) -> "LogReg":
        p, a = state.params, state.arrays
        model = cls(n_components=p["n_components"], C=tuple(p.get("C_candidates", [p["C"]])), cv=p.get("cv", 3),
                    max_iter=p.get("max_iter", 3000), class_weight=p.get("class_weight", "balanced"))
        model.C_ = p["C"]
        model.scores_ = p.get("cv_scores", {})
        model.classes_ = a["classes"].astype(str)
        model.standardiser_ = {"scaler_mean": a["scaler_mean"], "scaler_scale": a["scaler_scale"]}
        model.pca_mean_ = a.get("pca_mean")
        model.pca_components_ = a.get("pca_components")
        model.coef_, model.intercept_ = a["coef"], a["intercept"]
        n_rows = 1 if len(model.classes_) == 2 else len(model.classes_)
        if model.coef_.shape[0] != n_rows or len(model.intercept_) != n_rows:
            raise ValueError(f"coef has {model.coef_.shape[0]} rows for {len(model.classes_)} classes")
        return model
