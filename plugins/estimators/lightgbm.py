"""Standardise, then LightGBM multiclass trees with balanced class weights.

Hyper-parameters start from the original study's best model: 10 leaves, depth 10,
learning rate 0.1, 1000 trees. Class imbalance is handled with balanced class weights:
each segment is weighted by ``n_samples / (n_classes * n_samples_of_its_class)``, so
every genre carries the same total weight in the loss.

A bundle's booster text is never handed to LightGBM as it is: LightGBM's parser trusts
its input (a truncated text crashes the process, a child index out of range aborts it),
so :func:`checked_booster` parses it, checks every tree against the bundle's classes and
features, and rebuilds the text LightGBM reads from the checked values, each number
kept as written (a valid booster's text comes back unchanged up to its last tree, so it
predicts exactly as before).
"""

from __future__ import annotations

import logging
import re
import sys

import lightgbm
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from genre_tagger.hookspecs import ModelState
from genre_tagger_plugins.estimators.standardise import fit_standardiser, standardise

#: the parameters a bundle records, and restores on load
SAVED = ("num_leaves", "max_depth", "learning_rate", "n_estimators", "class_weight")
#: the model's text state: ``booster.txt`` in a bundle
BOOSTER = "booster"

# LightGBM's native messages arrive as info records of this logger, which the console does
# not show (its warnings still are): a scan's output stays ours.
lightgbm.register_logger(logging.getLogger("genre_tagger.lightgbm"))

#: the lines of a booster's header, in the order LightGBM 4 writes them
HEADER_FIELDS = ("version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx", "objective",
                 "feature_names", "feature_infos", "tree_sizes")
#: the lines of a tree, in the order LightGBM 4 writes them for numerical splits (the only
#: kind this plugin trains: no categorical features, no linear leaves)
TREE_FIELDS = ("num_leaves", "num_cat", "split_feature", "split_gain", "threshold", "decision_type", "left_child",
               "right_child", "leaf_value", "leaf_weight", "leaf_count", "internal_value", "internal_weight",
               "internal_count", "is_linear", "shrinkage")
#: the fields holding one value per split, and one per leaf
NODE_FIELDS = ("split_feature", "split_gain", "threshold", "decision_type", "left_child", "right_child",
               "internal_value", "internal_weight", "internal_count")
LEAF_FIELDS = ("leaf_value", "leaf_weight", "leaf_count")
INTEGER_FIELDS = ("split_feature", "decision_type", "left_child", "right_child", "leaf_count", "internal_count")
#: LightGBM's own bound on a tree's leaves
MAX_LEAVES = 131_072
#: a hundred times the trees of the shipped models (1000 rounds of 10 classes)
MAX_TREES = 1_000_000
#: the decision types of a numerical split: default left or right; missing values none, zero or NaN
NUMERICAL_DECISIONS = (0, 2, 4, 6, 8, 10)
_INT32 = 2**31 - 1
# Possessive quantifiers (Python 3.11) spare the regex engine its backtracking records:
# checking a booster's few MB of numbers takes a fifth of the time. Python 3.10 has none.
_P = "+" if sys.version_info >= (3, 11) else ""
# numbers as LightGBM writes them (%.17g and the like), below 1e100 in magnitude, so finite by their form
_INTEGER = rf"-?[0-9]{{1,10}}{_P}"
_NUMBER = rf"-?[0-9]+{_P}(?:\.[0-9]+{_P})?{_P}(?:e(?:-[0-9]{{1,3}}{_P}|\+[0-9]{{1,2}}{_P}))?{_P}"
_LIST = {integer: re.compile(f"(?:{token}(?: {token})*{_P})?") for integer, token in ((True, _INTEGER), (False, _NUMBER))}
_COUNT = re.compile(r"[1-9][0-9]{0,5}")
_FEATURE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_FEATURE_INFO = re.compile(rf"none|\[{_NUMBER}:{_NUMBER}\]")
_OBJECTIVE = {True: re.compile(rf"binary sigmoid:{_NUMBER}"), False: re.compile(r"multiclass num_class:([0-9]+)")}
_TREE = re.compile(r"Tree=([0-9]+)\n" + "".join(f"{name}=([^\\n]*{_P})\\n" for name in TREE_FIELDS) + r"\n\n")
_END = "end of trees\n"


class BoosterError(ValueError):
    """A booster text that this plugin would not have written for the bundle's classes and features."""


def checked_booster(text: str, n_classes: int, n_features: int) -> str:
    """The text of a LightGBM booster for ``n_classes`` classes on ``n_features`` columns,
    rebuilt from ``text`` once its header and every tree are checked: a binary tree whose
    children lie within its leaves, splits on existing features, finite numbers, arrays of
    the lengths its leaves give, the trees of whole rounds. Raises :class:`BoosterError`."""
    header, at = _checked_header(text, n_classes, n_features)
    trees = _tree_blocks(text, at)
    rounds = 1 if n_classes == 2 else n_classes
    if not trees or len(trees) % rounds:
        raise BoosterError(f"it holds {len(trees)} trees, not whole rounds of {rounds}")
    _check_trees(trees, n_features)
    blocks = [f"Tree={i}\n" + "".join(f"{name}={value}\n" for name, value in zip(TREE_FIELDS, tree)) + "\n\n"
              for i, tree in enumerate(trees)]
    header["tree_sizes"] = " ".join(str(len(block)) for block in blocks)
    return ("tree\n" + "".join(f"{name}={header[name]}\n" for name in HEADER_FIELDS) + "\n" + "".join(blocks)
            + _END + "\npandas_categorical:null\n")


def _checked_header(text: str, n_classes: int, n_features: int) -> tuple[dict[str, str], int]:
    """The header's fields, checked against the bundle's classes and features, and where
    the first tree starts."""
    lines = text.split("\n", len(HEADER_FIELDS) + 2)
    if lines[0] != "tree" or len(lines) < len(HEADER_FIELDS) + 3:
        raise BoosterError("not a LightGBM booster")
    header = {}
    for number, (name, line) in enumerate(zip(HEADER_FIELDS, lines[1:]), start=2):
        if not line.startswith(f"{name}="):
            raise BoosterError(f"line {number} is not its {name} (LightGBM 4 writes {', '.join(HEADER_FIELDS)})")
        header[name] = line[len(name) + 1:]
    if lines[len(HEADER_FIELDS) + 1] != "":
        raise BoosterError(f"line {len(HEADER_FIELDS) + 2} does not end its header")
    binary = n_classes == 2
    rounds = "1" if binary else str(n_classes)
    expected = {"version": "v4", "num_class": rounds, "num_tree_per_iteration": rounds, "label_index": "0",
                "max_feature_idx": str(n_features - 1)}
    for name, value in expected.items():
        if header[name] != value:
            raise BoosterError(f"its {name} is not {value} (the bundle has {n_classes} classes and {n_features} features)")
    objective = _OBJECTIVE[binary].fullmatch(header["objective"])
    if objective is None or (not binary and objective.group(1) != rounds) or (
            binary and not float(header["objective"].partition(":")[2]) > 0):
        raise BoosterError(f"its objective is not this plugin's for {n_classes} classes")
    for name, pattern in (("feature_names", _FEATURE_NAME), ("feature_infos", _FEATURE_INFO)):
        values = header[name].split(" ")
        if len(values) != n_features or not all(pattern.fullmatch(value) for value in values):
            raise BoosterError(f"its {name} are not {n_features} plain entries")
    return header, sum(len(line) + 1 for line in lines[:len(HEADER_FIELDS) + 2])


def _tree_blocks(text: str, at: int) -> list[tuple[str, ...]]:
    """Each tree's values, in :data:`TREE_FIELDS` order, from the offset ``at`` to ``end of trees``."""
    if _END not in text[at:]:
        raise BoosterError("truncated: no 'end of trees' line")
    trees: list[tuple[str, ...]] = []
    while not text.startswith(_END, at):
        tree = _TREE.match(text, at)
        if tree is None or tree.group(1) != str(len(trees)):
            raise BoosterError(f"line {text.count(chr(10), 0, at) + 1}: not tree {len(trees)} "
                               "as LightGBM writes a tree of numerical splits")
        trees.append(tree.groups()[1:])
        if len(trees) > MAX_TREES:
            raise BoosterError(f"more than {MAX_TREES} trees")
        at = tree.end()
    return trees


def _check_trees(trees: list[tuple[str, ...]], n_features: int) -> None:
    """Check every tree's values (see :func:`checked_booster`), all trees at once."""
    field = dict(zip(TREE_FIELDS, zip(*trees)))
    for name in ("num_cat", "is_linear"):
        if any(value != "0" for value in field[name]):
            raise BoosterError(f"tree {[v != '0' for v in field[name]].index(True)}: its {name} is not 0 "
                               "(categorical splits and linear leaves are not this plugin's)")
    leaves = np.array([int(v) if _COUNT.fullmatch(v) else 0 for v in field["num_leaves"]], dtype=np.int64)
    if ((leaves < 1) | (leaves > MAX_LEAVES)).any():
        tree = int(np.argmax((leaves < 1) | (leaves > MAX_LEAVES)))
        raise BoosterError(f"tree {tree}: its num_leaves is not a count from 1 to {MAX_LEAVES}")
    values = {}
    for name in (*NODE_FIELDS, *LEAF_FIELDS, "shrinkage"):
        lengths = leaves - 1 if name in NODE_FIELDS else leaves if name in LEAF_FIELDS else np.ones_like(leaves)
        counts = np.array([value.count(" ") + 1 if value else 0 for value in field[name]])
        if name == "leaf_weight":  # LightGBM writes none for a tree of one leaf
            counts[(leaves == 1) & (counts == 0)] = 1
        if (counts != lengths).any():
            tree = int(np.argmax(counts != lengths))
            raise BoosterError(f"tree {tree}: its {name} holds {counts[tree]} values, not {lengths[tree]}")
        integer = name in INTEGER_FIELDS
        joined = " ".join(value for value in field[name] if value)
        if not _LIST[integer].fullmatch(joined):
            kind = "an integer" if integer else "a finite number as LightGBM writes one, below 1e100"
            raise BoosterError(f"tree {_first(field[name], _LIST[integer])}: a value of its {name} is not {kind}")
        if integer:
            values[name] = np.fromstring(joined, dtype=np.int64, sep=" ") if joined else np.zeros(0, np.int64)
            if (np.abs(values[name]) > _INT32).any():
                raise BoosterError(f"a value of {name} is beyond 32 bits")
    _check_structure(leaves, values, n_features)


def _check_structure(leaves: np.ndarray, values: dict[str, np.ndarray], n_features: int) -> None:
    """Each tree's splits read existing features, and its children make one binary tree:
    every node but the root the child of exactly one node of a smaller index (so there is
    no cycle), every leaf the child of exactly one node."""
    splits = leaves - 1
    tree = np.repeat(np.arange(len(leaves)), splits)
    node = np.arange(splits.sum()) - np.repeat(np.cumsum(splits) - splits, splits)
    node_leaves = leaves[tree]
    problems = [
        ((values["split_feature"] < 0) | (values["split_feature"] >= n_features), f"splits on a feature beyond its {n_features}"),
        (~np.isin(values["decision_type"], NUMERICAL_DECISIONS), "has a decision type other than a numerical split"),
    ]
    ids = []
    for name in ("left_child", "right_child"):
        child = values[name]
        outside = np.where(child >= 0, (child <= node) | (child > node_leaves - 2), ~child > node_leaves - 1)
        problems.append((outside, f"has a {name} outside its nodes and leaves"))
        ids.append(np.where(child >= 0, child, node_leaves - 1 + ~child))
    for bad, what in problems:
        if bad.any():
            raise BoosterError(f"tree {tree[np.argmax(bad)]} {what}")
    starts = np.cumsum(2 * leaves - 1) - (2 * leaves - 1)  # each tree's nodes then leaves
    counts = np.bincount(np.concatenate([starts[tree] + i for i in ids]), minlength=int((2 * leaves - 1).sum()))
    expected = np.ones_like(counts)
    expected[starts] = 0
    if (counts != expected).any():
        first = int(np.searchsorted(starts, np.argmax(counts != expected), side="right") - 1)
        raise BoosterError(f"tree {first}: its left_child and right_child do not make one tree of its {leaves[first]} leaves")


def _first(values: list[str], pattern: re.Pattern) -> int:
    """The index of the first of ``values`` not matching ``pattern`` (for an error message)."""
    return next(i for i, value in enumerate(values) if not pattern.fullmatch(value))


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
            texts={BOOSTER: self.booster_.model_to_string()},
        )

    @classmethod
    def load(cls, state: ModelState) -> "LightGBMGenreModel":
        """The model of a bundle's ``state``; its booster text is checked first (see
        :func:`checked_booster`). Raises ``ValueError`` naming the file and what is wrong."""
        model = cls(**{k: v for k, v in state.params.items() if k in SAVED})
        model.classes_ = state.arrays["classes"].astype(str)
        mean, scale = (np.asarray(state.arrays[name]) for name in ("scaler_mean", "scaler_scale"))
        if mean.ndim != 1 or mean.shape != scale.shape or not mean.size or mean.dtype.kind != "f" or \
                scale.dtype.kind != "f" or not np.isfinite(mean).all() or not np.isfinite(scale).all() or (scale <= 0).any():
            raise ValueError("arrays.npz: scaler_mean and scaler_scale are not a finite mean and a positive scale per feature")
        model.standardiser_ = {"scaler_mean": mean, "scaler_scale": scale}
        try:
            text = checked_booster(state.texts[BOOSTER], len(model.classes_), len(mean))
        except BoosterError as error:
            raise BoosterError(f"{BOOSTER}.txt: {error}") from None
        model.booster_ = lightgbm.Booster(model_str=text)
        return model
