"""Logistic regression models: ``logreg`` on ``gtzan57`` + ``timbre-rhythm``,
``musicnn-logreg`` on the same plus the ``musicnn`` embedding, and ``hog-logreg`` on HOG
features of log-mel spectrograms (``hog-mel``).

``hog-logreg`` is the original study's spectrogram model: HOG of the spectrogram image,
PCA, logistic regression. ``logreg`` is the same without PCA. Per segment:

1. **StandardScaler** -- every column to zero mean and unit variance;
2. **PCA** (``hog-logreg`` only, ``n_components``) -- the leading principal components
   of the standardised rows (not whitened). The default, 128 components of the 1176 hog-mel
   features, was chosen with the HOG settings by clip-grouped CV on GTZAN
   (``benchmarks/select_hog.py``, ``benchmarks/results/hog_selection.md``);
3. **LogisticRegression** -- multinomial, L2, lbfgs, with ``class_weight="balanced"``
   (the default; ``None`` turns it off, as the ablation does):
   GTZAN as shipped is imbalanced (100 clips of blues, classical, jazz and rock, about
   20 of the six other genres), and balanced weights give each segment the weight
   ``n_samples / (n_classes * n_samples_of_its_class)``, so every genre carries the same
   total weight in the loss instead of the four large ones dominating it.

The regularisation ``C`` is chosen inside :meth:`LogReg.fit` by inner grouped CV
over the training rows (segments of one clip never on both sides, ``groups``), scored
by track balanced accuracy (majority vote of each clip's segments), ties to the smaller
``C``.

The learned state is plain arrays (scaler mean/scale, PCA mean/components, weights and
intercepts, classes as strings) and prediction is numpy arithmetic on them, so a saved
model predicts exactly as the fitted one and a bundle never holds a pickle.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from genre_tagger.hookspecs import ModelState, hookimpl

# scikit-learn (and genre_tagger.metrics, which imports it) is imported where it is used,
# in fitting: every command loads this plugin (to list the registered models), importing
# scikit-learn takes about 1 s, and predicting is numpy arithmetic.

#: chosen with the hog-mel settings by benchmarks/select_hog.py
N_COMPONENTS = 128
C_CANDIDATES = (0.0003, 0.001, 0.003, 0.01, 0.03)
#: logreg's 201 columns are far fewer than hog-logreg's: weaker regularisation fits
LOGREG_C_CANDIDATES = (0.01, 0.03, 0.1, 0.3)


class LogReg:
    """Standardise, optionally PCA, class-balanced multinomial logistic regression.

    Parameters
    ----------
    n_components : PCA components kept (capped at the number of rows and features);
        ``None`` or ``0`` for no PCA.
    C : candidate inverse L2 strengths; with more than one, the best by inner grouped CV
        is kept (``C_``, scores in ``scores_``).
    cv : number of inner grouped folds used to choose ``C``.
    max_iter : lbfgs iterations.
    random_state : seed of the randomised PCA solver and of the inner folds.

    BLAS runs on one thread during ``fit``: the matrices are small, and two OpenBLAS
    thread pools spinning against other work on a shared machine made lbfgs up to 100x
    slower.
    """

    name: ClassVar[str] = "logreg"
    feature_extractors: ClassVar[tuple[str, ...]] = ("gtzan57", "timbre-rhythm")
    version: ClassVar[str] = "1"

    def __init__(
        self,
        n_components: int | None = None,
        C: float | tuple[float, ...] = LOGREG_C_CANDIDATES,
        cv: int = 3,
        max_iter: int = 3000,
        random_state: int = 0,
        class_weight: str | None = "balanced",
    ):
        self.n_components = n_components
        self.C = tuple(C) if isinstance(C, (tuple, list)) else (float(C),)
        self.cv = cv
        self.max_iter = max_iter
        self.random_state = random_state
        self.class_weight = class_weight

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "LogReg":
        """Fit on ``X [n_segments, n_features]``, genres ``y`` and clip ids ``groups``."""
        from threadpoolctl import threadpool_limits

        X, y = np.asarray(X, dtype=float), np.asarray(y).astype(str)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        self.scores_: dict[str, float] = {}
        with threadpool_limits(limits=1, user_api="blas"):
            if len(self.C) > 1:
                self.scores_ = self._grouped_scores(X, y, groups)
                # ties go to the smaller C (stronger regularisation)
                self.C_ = max(sorted(self.C), key=lambda c: self.scores_[f"C={c:g}"])
            else:
                self.C_ = self.C[0]
            self._fit_final(X, y, self.C_)
        return self

    def _grouped_scores(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, float]:
        """Track balanced accuracy of each candidate ``C`` by inner grouped CV (pooled folds)."""
        from sklearn.model_selection import StratifiedGroupKFold

        from genre_tagger.metrics import segment_and_track_scores

        classes = np.unique(y)
        n_splits = max(2, min(self.cv, len(np.unique(groups))))
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        proba = {c: np.zeros((len(y), len(classes))) for c in self.C}
        for train, test in folds.split(X, y, groups):
            # scaler and PCA once per fold, shared by every C
            model = type(self)(self.n_components, self.C, self.cv, self.max_iter, self.random_state, self.class_weight)
            Z_train = model._fit_transform(X[train])
            Z_test = model._transform(X[test])
            for c in self.C:
                model._fit_logreg(Z_train, y[train], c)
                columns = np.searchsorted(classes, model.classes_)
                proba[c][np.ix_(test, columns)] = model._proba(Z_test)
        return {
            f"C={c:g}": float(segment_and_track_scores(y, proba[c], classes, groups)["track_balanced_accuracy"])
            for c in self.C
        }

    def _fit_final(self, X: np.ndarray, y: np.ndarray, C: float) -> None:
        self._fit_logreg(self._fit_transform(X), y, C)

    def _fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit the scaler and PCA on ``X``; return the transformed rows."""
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(X)
        self.scaler_mean_, self.scaler_scale_ = scaler.mean_, scaler.scale_
        Z = (X - self.scaler_mean_) / self.scaler_scale_
        k = min(self.n_components or 0, Z.shape[0], Z.shape[1])
        if k > 0:
            pca = PCA(n_components=k, svd_solver="auto", random_state=self.random_state).fit(Z)
            self.pca_mean_, self.pca_components_ = pca.mean_, pca.components_
        else:
            self.pca_mean_ = self.pca_components_ = None
        return self._project(Z)

    def _fit_logreg(self, Z: np.ndarray, y: np.ndarray, C: float) -> None:
        from sklearn.linear_model import LogisticRegression

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
        return self._project((np.asarray(X, dtype=float) - self.scaler_mean_) / self.scaler_scale_)

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
        arrays = {
            "classes": self.classes_.astype(str),
            "scaler_mean": self.scaler_mean_,
            "scaler_scale": self.scaler_scale_,
            "coef": self.coef_,
            "intercept": self.intercept_,
        }
        if self.pca_components_ is not None:
            arrays["pca_mean"], arrays["pca_components"] = self.pca_mean_, self.pca_components_
        return ModelState(
            params={
                "n_components": self.n_components,
                "C": float(self.C_),
                "C_candidates": [float(c) for c in self.C],
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
        model = cls(n_components=p["n_components"], C=(p["C"],), cv=p.get("cv", 3), max_iter=p.get("max_iter", 3000),
                    class_weight=p.get("class_weight", "balanced"))
        model.C = tuple(p.get("C_candidates", [p["C"]]))
        model.C_ = p["C"]
        model.scores_ = p.get("cv_scores", {})
        model.classes_ = a["classes"].astype(str)
        model.scaler_mean_, model.scaler_scale_ = a["scaler_mean"], a["scaler_scale"]
        model.pca_mean_ = a.get("pca_mean")
        model.pca_components_ = a.get("pca_components")
        model.coef_, model.intercept_ = a["coef"], a["intercept"]
        n_rows = 1 if len(model.classes_) == 2 else len(model.classes_)
        if model.coef_.shape[0] != n_rows or len(model.intercept_) != n_rows:
            raise ValueError(f"coef has {model.coef_.shape[0]} rows for {len(model.classes_)} classes")
        return model


class HogLogReg(LogReg):
    """:class:`LogReg` on ``hog-mel``, with PCA to :data:`N_COMPONENTS`."""

    name: ClassVar[str] = "hog-logreg"
    feature_extractors: ClassVar[tuple[str, ...]] = ("hog-mel",)

    def __init__(self, n_components: int | None = N_COMPONENTS, C: float | tuple[float, ...] = C_CANDIDATES,
                 cv: int = 3, max_iter: int = 3000, random_state: int = 0, class_weight: str | None = "balanced"):
        super().__init__(n_components, C, cv, max_iter, random_state, class_weight)


class MusicnnLogReg(LogReg):
    """:class:`LogReg` on ``gtzan57`` + ``timbre-rhythm`` + ``musicnn`` (401 columns).

    musicnn's embedding is learned from the Million Song Dataset's tags, so it carries
    what 3 s of hand-made statistics cannot; the hand-made columns stay beside it (they
    add little under grouped CV but about 0.04-0.1 on the artist split,
    ``benchmarks/results/explore_musicnn.md``). It scans
    several times slower than ``logreg``: musicnn's network costs about 60 ms per segment.
    """

    name: ClassVar[str] = "musicnn-logreg"
    feature_extractors: ClassVar[tuple[str, ...]] = ("gtzan57", "timbre-rhythm", "musicnn")


@hookimpl
def genre_tagger_models():
    return [LogReg, MusicnnLogReg, HogLogReg]
