"""Decision trees on the 57 GTZAN features: one tree, bagged trees and a random forest.

The original study's remaining models (#33): scikit-learn's ``DecisionTreeClassifier``,
``BaggingClassifier`` of such trees and ``RandomForestClassifier``, with its parameters
(the tree: entropy, depth 14, balanced classes, as its grid search chose; the forest:
gini, depth 29, balanced classes). Trees need no standardising: a split compares one raw
column with a threshold.

A fitted model keeps the scikit-learn estimator (``estimator_``) but predicts from the
trees' own arrays, the ones a bundle holds (:class:`TreeArrays`): per node its children,
the feature and threshold of its split, where a missing value goes, and per leaf its class
probabilities, every tree's nodes one after another. Prediction walks those arrays with
numpy exactly as scikit-learn walks its trees (float32 feature values against float64
thresholds, each tree's leaf probabilities normalised, the trees' sum divided by their
number), so a loaded bundle predicts what the fitted estimator did, to the last bit, and
nothing in a bundle is a pickle. :func:`check_trees` refuses arrays this plugin would not
have written (shapes, children outside their tree, a node reached twice or a cycle,
features beyond the model's, thresholds or probabilities that are not finite, absurd
sizes) with one line saying what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from genre_tagger.hookspecs import ModelState

#: the arrays of a bundle holding trees (beside ``classes``)
ARRAYS = ("tree_offsets", "children_left", "children_right", "feature", "threshold", "missing_go_to_left", "value")
#: far above any forest this plugin trains, far below what exhausts a machine
MAX_TREES = 100_000
MAX_NODES = 50_000_000
#: deeper than any tree of a few hundred thousand rows; the walk takes one step a level
MAX_DEPTH = 1_000
MAX_FEATURES = 100_000
#: a leaf's probabilities sum to 1 up to this
SUM_TOLERANCE = 1e-6
#: rows x trees walked at once (memory: about 100 bytes each)
_BLOCK = 1 << 20


class TreeError(ValueError):
    """Tree arrays that this plugin would not have written for the bundle's classes and features."""


@dataclass
class TreeArrays:
    """Every tree of a model, node after node: ``tree_offsets[t]`` is the first node of tree
    ``t`` (``tree_offsets[-1]`` the number of nodes); children are numbered within their
    tree, ``-1`` for a leaf's; ``value`` holds each leaf's class probabilities (zeros for a
    split node)."""

    tree_offsets: np.ndarray
    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_go_to_left: np.ndarray
    value: np.ndarray

    @property
    def n_trees(self) -> int:
        return len(self.tree_offsets) - 1

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS}


def arrays_of(trees: list, n_classes: int) -> TreeArrays:
    """The :class:`TreeArrays` of fitted scikit-learn decision trees, each given as
    ``(tree, class_columns, feature_columns)``: its ``tree_``, which of the model's classes
    its value columns are (a bagged tree may have seen fewer), and which of the model's
    features its columns are (``None``: all, in order)."""
    offsets, parts = [0], {name: [] for name in ARRAYS}
    for tree, classes, features in trees:
        t = tree.tree_
        leaf = t.children_left < 0
        feature = t.feature.astype(np.int32)
        if features is not None:
            feature = np.where(leaf, feature, np.asarray(features)[np.maximum(feature, 0)]).astype(np.int32)
        # as DecisionTreeClassifier.predict_proba normalises each row of its leaf values
        raw = t.value[:, 0, :]
        normaliser = raw.sum(axis=1)[:, np.newaxis]
        normaliser[normaliser == 0.0] = 1.0
        value = np.zeros((t.node_count, n_classes))
        value[:, np.asarray(classes)] = raw / normaliser
        value[~leaf] = 0.0  # never read: zeros keep the bundle small
        parts["children_left"].append(t.children_left.astype(np.int32))
        parts["children_right"].append(t.children_right.astype(np.int32))
        parts["feature"].append(feature)
        parts["threshold"].append(t.threshold.astype(np.float64))
        parts["missing_go_to_left"].append(t.missing_go_to_left.astype(bool))
        parts["value"].append(value)
        offsets.append(offsets[-1] + t.node_count)
    return TreeArrays(np.asarray(offsets, dtype=np.int64), *(np.concatenate(parts[name]) for name in ARRAYS[1:]))


def check_trees(arrays: dict[str, np.ndarray], n_classes: int, n_features: int) -> tuple[TreeArrays, int]:
    """The bundle's ``arrays`` as :class:`TreeArrays` of ``n_classes`` classes on
    ``n_features`` columns, and the depth of the deepest tree, once checked: the arrays'
    kinds and shapes, sizes within :data:`MAX_TREES`, :data:`MAX_NODES` and
    :data:`MAX_DEPTH`, each tree one binary tree (every split node's two children later
    nodes of its own tree, every node but a root the child of exactly one node, so there is
    no cycle), splits on existing features at finite thresholds, each leaf's probabilities
    finite, non-negative and summing to 1. Raises :class:`TreeError`."""
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise TreeError(f"no {', '.join(missing)} array")
    a = {name: np.asarray(arrays[name]) for name in ARRAYS}
    integer = ("tree_offsets", "children_left", "children_right", "feature")
    for name in ARRAYS:
        kind = a[name].dtype.kind
        wanted = "iu" if name in integer else "b" if name == "missing_go_to_left" else "f"
        if kind not in wanted:
            raise TreeError(f"{name} holds {a[name].dtype}, not {'integers' if wanted == 'iu' else 'booleans' if wanted == 'b' else 'floats'}")
    offsets = a["tree_offsets"]
    if offsets.ndim != 1 or not 2 <= len(offsets) <= MAX_TREES + 1:
        raise TreeError(f"tree_offsets is not one row of 2 to {MAX_TREES + 1} offsets (1 to {MAX_TREES} trees)")
    n_nodes = len(a["children_left"])
    if n_nodes > MAX_NODES:
        raise TreeError(f"{n_nodes} nodes, more than {MAX_NODES}")
    for name in ARRAYS[1:6]:
        if a[name].shape != (n_nodes,):
            raise TreeError(f"{name} has shape {a[name].shape}, not ({n_nodes},) as children_left")
    if a["value"].shape != (n_nodes, n_classes):
        raise TreeError(f"value has shape {a['value'].shape}, not ({n_nodes}, {n_classes}) for {n_classes} classes")
    offsets = offsets.astype(np.int64)
    sizes = np.diff(offsets)
    if offsets[0] != 0 or offsets[-1] != n_nodes or (sizes < 1).any():
        raise TreeError(f"tree_offsets do not cut its {n_nodes} nodes into trees of at least one node")
    tree = np.repeat(np.arange(len(sizes)), sizes)
    node = np.arange(n_nodes) - offsets[tree]
    left, right = a["children_left"].astype(np.int64), a["children_right"].astype(np.int64)
    leaf = left == -1
    if ((right == -1) != leaf).any():
        raise TreeError(f"tree {tree[np.argmax((right == -1) != leaf)]}: a node with one child")
    for name, child in (("children_left", left), ("children_right", right)):
        outside = ~leaf & ((child <= node) | (child >= sizes[tree]))
        if outside.any():
            raise TreeError(f"tree {tree[np.argmax(outside)]}: a {name} outside the later nodes of its tree")
    split = ~leaf
    parents = np.bincount(np.concatenate([(left + offsets[tree])[split], (right + offsets[tree])[split]]),
                          minlength=n_nodes)
    expected = np.ones(n_nodes, dtype=np.int64)
    expected[offsets[:-1]] = 0
    if (parents != expected).any():
        raise TreeError(f"tree {tree[np.argmax(parents != expected)]}: its children do not make one tree "
                        "(a node reached twice, or never)")
    feature = a["feature"].astype(np.int64)
    if (split & ((feature < 0) | (feature >= n_features))).any():
        raise TreeError(f"tree {tree[np.argmax(split & ((feature < 0) | (feature >= n_features)))]}: "
                        f"a split on a feature beyond its {n_features}")
    if not np.isfinite(a["threshold"]).all():
        raise TreeError(f"tree {tree[np.argmax(~np.isfinite(a['threshold']))]}: a threshold that is not a finite number")
    value = a["value"]
    bad = ~np.isfinite(value).all(axis=1) | (value < 0).any(axis=1)
    bad |= leaf & ~(np.abs(np.where(np.isfinite(value), value, 0).sum(axis=1) - 1) <= SUM_TOLERANCE)
    if bad.any():
        raise TreeError(f"tree {tree[np.argmax(bad)]}: a leaf's class probabilities are not finite, non-negative "
                        "and summing to 1")
    depth = _depth(left, right, leaf, offsets)
    checked = TreeArrays(offsets, left.astype(np.int32), right.astype(np.int32), feature.astype(np.int32),
                         a["threshold"].astype(np.float64), a["missing_go_to_left"].astype(bool),
                         value.astype(np.float64))
    return checked, depth


def _depth(left: np.ndarray, right: np.ndarray, leaf: np.ndarray, offsets: np.ndarray) -> int:
    """The depth of the deepest tree (its root at 0), one level of every tree at a time;
    :class:`TreeError` beyond :data:`MAX_DEPTH`. The arrays are already one tree each."""
    tree = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    left_global, right_global = left + offsets[tree], right + offsets[tree]
    level, depth = offsets[:-1], 0
    while True:
        level = level[~leaf[level]]
        if not len(level):
            return depth
        depth += 1
        if depth > MAX_DEPTH:
            raise TreeError(f"a tree deeper than {MAX_DEPTH} levels")
        level = np.concatenate([left_global[level], right_global[level]])


class TreePredictor:
    """Class probabilities of checked :class:`TreeArrays`, computed with numpy as
    scikit-learn computes them: the mean over trees of each row's leaf probabilities."""

    def __init__(self, arrays: TreeArrays, depth: int):
        self.arrays, self.depth = arrays, depth
        offsets = arrays.tree_offsets
        tree = np.repeat(np.arange(arrays.n_trees), np.diff(offsets))
        own = np.arange(len(tree))
        leaf = arrays.children_left < 0
        # a leaf's children are itself, so that a walk of `depth` steps ends on every row's leaf
        self._left = np.where(leaf, own, arrays.children_left + offsets[tree])
        self._right = np.where(leaf, own, arrays.children_right + offsets[tree])
        self._feature = np.where(leaf, 0, arrays.feature)
        self._roots = offsets[:-1]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)  # scikit-learn's trees compare float32 values
        n_trees, n_classes = self.arrays.n_trees, self.arrays.value.shape[1]
        proba = np.zeros((len(X), n_classes))
        step = max(1, _BLOCK // n_trees)
        for start in range(0, len(X), step):
            rows = X[start:start + step]
            node = np.broadcast_to(self._roots, (len(rows), n_trees)).copy()
            index = np.arange(len(rows))[:, np.newaxis]
            for _ in range(self.depth):
                x = rows[index, self._feature[node]]
                go_left = x <= self.arrays.threshold[node]
                go_left |= np.isnan(x) & self.arrays.missing_go_to_left[node]
                node = np.where(go_left, self._left[node], self._right[node])
            block = proba[start:start + step]
            for t in range(n_trees):  # in the trees' order, as scikit-learn adds them
                block += self.arrays.value[node[:, t]]
        return proba / n_trees if n_trees > 1 else proba


class _TreeModel(ClassifierMixin, BaseEstimator):
    """What the three tree models share: fitting the scikit-learn estimator of
    :meth:`_estimator` on the genres as class indices, predicting and saving its trees' arrays."""

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "_TreeModel":
        """Fit on ``X [n_segments, n_features]`` and genres ``y``; ``groups`` is not needed
        (no model selection inside: the parameters are the study's)."""
        X, y = np.asarray(X, dtype=float), np.asarray(y).astype(str)
        self.classes_ = np.unique(y)
        self.n_features_in_ = X.shape[1]
        self.estimator_ = self._estimator().fit(X, np.searchsorted(self.classes_, y))
        self._predictor = TreePredictor(arrays_of(self._trees(), len(self.classes_)), self.estimator_depth())
        return self

    def estimator_depth(self) -> int:
        return max(tree.tree_.max_depth for tree, _, _ in self._trees())

    def _estimator(self):  # pragma: no cover - each model's own
        raise NotImplementedError

    def _trees(self) -> list:
        """``(tree, class_columns, feature_columns)`` of every tree of ``estimator_`` (see :func:`arrays_of`)."""
        return [(tree, tree.classes_.astype(int), None) for tree in self.estimator_.estimators_]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n_segments, n_classes]``, columns in the order of ``classes_``."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[-1]} features, not the {self.n_features_in_} the model was fitted on")
        return self._predictor.predict_proba(X)

    def save(self) -> ModelState:
        params = {name: value for name, value in self.get_params().items() if name != "n_jobs"}
        return ModelState(params={**params, "n_features": int(self.n_features_in_)},
                          arrays={"classes": self.classes_.astype(str), **self._predictor.arrays.as_dict()})

    @classmethod
    def load(cls, state: ModelState) -> "_TreeModel":
        """The model of a bundle's ``state``, its arrays checked first (:func:`check_trees`).
        Raises ``ValueError`` naming the file and what is wrong."""
        params = dict(state.params)
        n_features = params.pop("n_features", None)
        if not isinstance(n_features, int) or isinstance(n_features, bool) or not 1 <= n_features <= MAX_FEATURES:
            raise TreeError(f"bundle.json: its params' n_features is not a number of features from 1 to {MAX_FEATURES}")
        model = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
        model.classes_ = np.asarray(state.arrays["classes"]).astype(str)
        model.n_features_in_ = n_features
        try:
            arrays, depth = check_trees(state.arrays, len(model.classes_), n_features)
        except TreeError as error:
            raise TreeError(f"arrays.npz: {error}") from None
        model._predictor = TreePredictor(arrays, depth)
        return model


class DecisionTreeGenreModel(_TreeModel):
    """One decision tree (scikit-learn's ``DecisionTreeClassifier``). The defaults are the
    study's grid-searched tree: entropy, depth 14, balanced class weights."""

    def __init__(self, criterion: str = "entropy", max_depth: int | None = 14, min_samples_leaf: int = 1,
                 class_weight: str | None = "balanced", random_state: int = 0, n_jobs: int | None = 1):
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs  # unused: one tree fits on one core

    def _estimator(self):
        from sklearn.tree import DecisionTreeClassifier
        return DecisionTreeClassifier(criterion=self.criterion, max_depth=self.max_depth,
                                      min_samples_leaf=self.min_samples_leaf, class_weight=self.class_weight,
                                      random_state=self.random_state)

    def _trees(self) -> list:
        return [(self.estimator_, np.arange(len(self.classes_)), None)]


class BaggedTreesGenreModel(_TreeModel):
    """Bagged decision trees (scikit-learn's ``BaggingClassifier`` of ``DecisionTreeClassifier``):
    each tree grown to its full depth on a bootstrap sample of the rows."""

    def __init__(self, n_estimators: int = 100, max_depth: int | None = None, max_samples: float = 1.0,
                 criterion: str = "gini", random_state: int = 0, n_jobs: int | None = 1):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.max_samples = max_samples
        self.criterion = criterion
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _estimator(self):
        from sklearn.ensemble import BaggingClassifier
        from sklearn.tree import DecisionTreeClassifier
        return BaggingClassifier(DecisionTreeClassifier(criterion=self.criterion, max_depth=self.max_depth),
                                 n_estimators=self.n_estimators, max_samples=self.max_samples,
                                 random_state=self.random_state, n_jobs=self.n_jobs)

    def _trees(self) -> list:
        return [(tree, tree.classes_.astype(int), features)
                for tree, features in zip(self.estimator_.estimators_, self.estimator_.estimators_features_)]


class RandomForestGenreModel(_TreeModel):
    """A random forest (scikit-learn's ``RandomForestClassifier``). The defaults are the
    study's forest (gini, depth 29, balanced class weights) with 300 trees instead of its
    1500: on GTZAN's 519 clips they score as its 1500 do by grouped CV and on the unseen
    source (0.685 and 0.473 against 0.686 and 0.467), in a fifth of its bundle (2.7 MB
    against 13.3 MB) and of its fitting time (``research/results/reproduce_seed_trees.md``)."""

    def __init__(self, n_estimators: int = 300, criterion: str = "gini", max_depth: int | None = 29,
                 min_samples_leaf: int = 1, max_features: str | float | None = "sqrt",
                 class_weight: str | None = "balanced", random_state: int = 0, n_jobs: int | None = 1):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _estimator(self):
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier(n_estimators=self.n_estimators, criterion=self.criterion,
                                      max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                                      max_features=self.max_features, class_weight=self.class_weight,
                                      random_state=self.random_state, n_jobs=self.n_jobs)
