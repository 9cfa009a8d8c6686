"""The weights of an ensemble (:mod:`genre_tagger.models.ensemble`), chosen honestly.

Weights are chosen on a grid (steps of 0.1 summing to 1) by clip-grouped CV: for each
fold, the weights that maximise track balanced accuracy on the out-of-fold predictions
of the *other* folds are applied to that fold, so the reported score never used the
labels it is scored on to choose its weights. The shipped weights are the best over all
folds.
"""

from __future__ import annotations

import itertools

import numpy as np

from genre_tagger.models.ensemble import combine
from genre_tagger.selection import track_balanced_accuracy
from genre_tagger.training.crossval import CrossSet, OutOfFold, TrainedModel, cross_scores, folds_of, scores_of, split_masks
from genre_tagger.training.dataset import Dataset
from genre_tagger.training.scoring import segment_and_track_scores


def weight_grid(n_members: int, step: float = 0.1) -> np.ndarray:
    """Every weight vector ``[n_members]`` of multiples of ``step`` summing to 1."""
    units = round(1 / step)
    rows = [c for c in itertools.product(range(units + 1), repeat=n_members) if sum(c) == units]
    return np.array(rows, dtype=float) / units


def best_weights(probas: list[np.ndarray], dataset: Dataset, classes: np.ndarray) -> np.ndarray:
    """The grid weights with the best track balanced accuracy on ``dataset``'s rows."""
    grid = weight_grid(len(probas))
    scores = [track_balanced_accuracy(dataset.y, combine(probas, w), classes, dataset.groups) for w in grid]
    return grid[int(np.argmax(scores))]


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


def train(trained: dict[str, TrainedModel], splits: dict[str, set[str]] | None,
          cross: CrossSet | None = None) -> tuple[np.ndarray, dict]:
    """Weights for the members of ``trained`` and the ensemble's scores.

    Returns ``(weights [n_members], metrics)`` with grouped-CV scores (weights chosen on
    the other folds, and applied to the degraded copies of the fold where the members
    have them) and, where the members have them, artist-split scores (weights chosen on
    the train+valid clips' out-of-fold predictions), and with ``cross`` the cross-dataset
    scores (each fold's weights applied to its clips). There is no leaky-split score: the
    ensemble is never trained on a random split of segments.
    """
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
    metrics = {"grouped_cv": dict(scores_of(dataset, oof, classes, folds),
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
        metrics["robustness"][name] = scores_of(rows, combined, classes, rows_folds)
    weights = best_weights(probas, dataset, classes)
    if cross is not None and all(m.cv.cross is not None for m in members):
        combined = np.zeros_like(members[0].cv.cross.proba)
        for fold, fold_weight in fold_weights.items():
            rows = cross.folds == fold
            combined[rows] = combine([m.cv.cross.proba[rows] for m in members], fold_weight)
        first = members[0].cv.cross
        metrics["cross_dataset"] = dict(cross_scores(OutOfFold(first.rows, combined, first.folds), classes, cross.known),
                                        trained_on=cross.train, weight=cross.weight)
    if cross is not None and all(m.cv.unseen is not None for m in members):
        first = members[0].cv.unseen  # the weights were chosen on the training folder: this source stays unseen
        combined = combine([m.cv.unseen.proba for m in members], weights)
        metrics["unseen_source"] = cross_scores(OutOfFold(first.rows, combined, first.folds), classes, cross.known)

    if splits and all(member.artist is not None for member in members):
        test, test_probas = _aligned([(m.artist.test, m.artist.proba) for m in members])
        train_rows = split_masks(dataset, splits)[0]
        split_weights = best_weights([p[train_rows] for p in probas], dataset.subset(train_rows), classes)
        scores = segment_and_track_scores(test.y, combine(test_probas, split_weights), classes, test.groups)
        metrics["artist_split"] = dict(scores, weights=dict(zip(trained, split_weights.tolist())))
    return weights, metrics
