"""An ensemble: the weighted mean of several models' probabilities, per segment.

Members may use different features (``knn`` and ``lightgbm`` read ``gtzan57``,
``hog-logreg`` reads ``hog-mel``); every member sees the same segments of a track, so
their probabilities can be averaged row by row before the vote.

Weights are chosen on a grid (steps of 0.1 summing to 1) by clip-grouped CV: for each
fold, the weights that maximise track balanced accuracy on the out-of-fold predictions
of the *other* folds are applied to that fold, so the reported score never used the
labels it is scored on to choose its weights. The shipped weights are the best over all
folds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genre_tagger import bundle as bundle_module
from genre_tagger.plugins import Registry

if TYPE_CHECKING:
    from genre_tagger.training import Dataset, TrainedModel

# Scans import this module to load ensembles; the functions that train one import the
# training and scoring modules (and with them scikit-learn, ~1 s) only when called.

NAME = "ensemble"
KIND = "ensemble"


def weight_grid(n_members: int, step: float = 0.1) -> np.ndarray:
    """Every weight vector ``[n_members]`` of multiples of ``step`` summing to 1."""
    units = round(1 / step)
    rows = [c for c in itertools.product(range(units + 1), repeat=n_members) if sum(c) == units]
    return np.array(rows, dtype=float) / units


def combine(probas: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Weighted mean of members' probabilities, each ``[n_segments, n_classes]``."""
    return sum(w * p for w, p in zip(weights, probas))


def best_weights(probas: list[np.ndarray], dataset: Dataset, classes: np.ndarray) -> np.ndarray:
    """The grid weights with the best track balanced accuracy on ``dataset``'s rows."""
    from genre_tagger.metrics import segment_and_track_scores

    grid = weight_grid(len(probas))
    scores = [
        segment_and_track_scores(dataset.y, combine(probas, w), classes, dataset.groups)["track_balanced_accuracy"]
        for w in grid
    ]
    return grid[int(np.argmax(scores))]


@dataclass
class Ensemble:
    """A predictor over member bundles, used by scan and evaluate like a single bundle."""

    members: list[bundle_module.Bundle]
    weights: np.ndarray
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    path: Path | None = None
    checksum: str = ""
    name: str = NAME

    @property
    def classes(self) -> np.ndarray:
        return self.members[0].classes

    @property
    def extractors(self) -> list[str]:
        return sorted({name for member in self.members for name in member.extractors})

    def load_model(self) -> None:
        """Make every member's model now (see :meth:`genre_tagger.bundle.Bundle.load_model`)."""
        for member in self.members:
            member.load_model()

    def predict_proba(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """``[n_segments, n_classes]`` from ``{extractor name: [n_segments, n_features]}``."""
        return combine([m.predict_proba(features) for m in self.members], self.weights)


def _aligned(parts: list[tuple[Dataset, np.ndarray]]) -> tuple[Dataset, list[np.ndarray]]:
    """The rows every member scored, in one order, with each member's probabilities for
    them; ``parts`` holds each member's ``(rows, probabilities)``."""
    common = set.intersection(*(set(rows.keys()) for rows, _ in parts))
    first = parts[0][0]
    reference = first.subset(np.isin(first.keys(), list(common)))
    order = reference.keys()
    probas = []
    for rows, proba in parts:
        position = {key: i for i, key in enumerate(rows.keys())}
        probas.append(proba[[position[key] for key in order]])
    return reference, probas


def train(trained: dict[str, TrainedModel], splits: dict[str, set[str]] | None) -> tuple[np.ndarray, dict]:
    """Weights for the members of ``trained`` and the ensemble's scores.

    Returns ``(weights [n_members], metrics)`` with grouped-CV scores (weights chosen on
    the other folds, and applied to the degraded copies of the fold where the members
    have them) and, where the members have them, artist-split scores (weights chosen on
    the train+valid clips' out-of-fold predictions). There is no leaky-split score: the
    ensemble is never trained on a random split of segments.
    """
    from genre_tagger.metrics import segment_and_track_scores
    from genre_tagger.training import folds_of, scores_by_fold, split_masks

    members = list(trained.values())
    dataset, probas = _aligned([(m.dataset, m.cv.proba) for m in members])
    classes = members[0].cv.classes
    folds = folds_of(dataset, members[0].dataset, members[0].cv.folds)
    fold_weights = {}
    oof = np.zeros_like(probas[0])
    for fold in np.unique(folds):
        outside = folds != fold
        fold_weights[fold] = best_weights([p[outside] for p in probas], dataset.subset(outside), classes)
        oof[~outside] = combine([p[~outside] for p in probas], fold_weights[fold])
    metrics = {"grouped_cv": dict(scores_by_fold(dataset, oof, classes, folds),
                                  fold_weights=[dict(zip(trained, w.tolist())) for w in fold_weights.values()])}
    degradations = set.intersection(*(set(m.cv.degraded) for m in members))
    if degradations:
        metrics["robustness"] = {}
    for name in sorted(degradations):
        rows, degraded = _aligned([(m.cv.degraded[name].rows, m.cv.degraded[name].proba) for m in members])
        rows_folds = folds_of(rows, members[0].dataset, members[0].cv.folds)
        combined = np.zeros_like(degraded[0])
        for fold, weights in fold_weights.items():
            combined[rows_folds == fold] = combine([p[rows_folds == fold] for p in degraded], weights)
        metrics["robustness"][name] = scores_by_fold(rows, combined, classes, rows_folds)
    weights = best_weights(probas, dataset, classes)

    if splits and all(member.artist is not None for member in members):
        test, test_probas = _aligned([(m.artist.test, m.artist.proba) for m in members])
        train_rows = split_masks(dataset, splits)[0]
        split_weights = best_weights([p[train_rows] for p in probas], dataset.subset(train_rows), classes)
        scores = segment_and_track_scores(test.y, combine(test_probas, split_weights), classes, test.groups)
        metrics["artist_split"] = dict(scores, weights=dict(zip(trained, split_weights.tolist())))
    return weights, metrics


def save(directory: str | Path, member_names: list[str], weights: np.ndarray, classes: np.ndarray,
         metrics: dict, training: dict) -> Path:
    """Write an ensemble bundle: only ``bundle.json``, naming its sibling member bundles."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": bundle_module.FORMAT,
        "kind": KIND,
        "model": NAME,
        "members": list(member_names),
        "weights": [float(w) for w in weights],
        "classes": [str(c) for c in classes],
        "files": {},
        "training": training,
        "metrics": metrics,
        "libraries": bundle_module.library_versions(),
    }
    (directory / bundle_module.META_FILE).write_text(json.dumps(meta, indent=2))
    return directory


def load(directory: str | Path, meta: dict, registry: Registry) -> Ensemble:
    """Load an ensemble and its members from the sibling folders of ``directory``.

    The members are checked as :func:`genre_tagger.bundle.load` checks a bundle, and
    their models are made on first use, like a single bundle's.
    """
    directory = Path(directory)
    members = [bundle_module.load(directory.parent / name, registry) for name in meta["members"]]
    weights = np.asarray(meta["weights"], dtype=float)
    if len(weights) != len(members) or not np.isclose(weights.sum(), 1) or (weights < 0).any():
        raise bundle_module.BundleError(f"{directory}: ensemble weights must be one non-negative weight per member, summing to 1")
    for member in members:
        if [str(c) for c in member.classes] != meta["classes"]:
            raise bundle_module.BundleError(f"{directory}: member {member.name} has other classes than the ensemble")
    digest = hashlib.sha256((directory / bundle_module.META_FILE).read_bytes())
    for member in members:
        digest.update(member.checksum.encode())
    return Ensemble(members, weights, meta.get("metrics", {}), meta.get("training", {}), directory, digest.hexdigest())
