"""Nested grouped CV: the score of the whole training procedure, lever choices included.

The ablation (:mod:`genre_tagger.training.ablation`) measures each lever with the same folds it
reports, so a configuration kept because it scored best there was chosen by looking at
the test clips. Here each outer fold's test clips play no part in the choice: for every
outer fold, each configuration of levers is scored by a grouped CV over the outer
training clips only; the best is fitted on all of them and predicts the outer test
clips. The pooled outer predictions give the score of "choose the levers by grouped CV,
then train", the procedure ``retrain`` follows.

A configuration sets the levers the ablation measures:

- *features*: every extractor the model reads, or its first only;
- *augmentation*: with or without the degraded copies of the training clips;
- *class weights*: ``"balanced"`` or ``None`` (models with a ``class_weight`` parameter);
- *vote*: majority or soft (no refit: both votes read the same probabilities).

Hyper-parameters a model tunes itself inside ``fit`` (logreg's ``C``) are tuned on the
rows it is given, so they stay inside every fold too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.base import clone

from genre_tagger.hookspecs import GenreModel
from genre_tagger.models.voting import VOTES, track_votes
from genre_tagger.selection import balanced_accuracy, track_labels
from genre_tagger.training.crossval import N_FOLDS, clip_folds, fit_predict, grouped_cv, weighs_classes
from genre_tagger.training.dataset import Dataset

INNER_FOLDS = 3


@dataclass(frozen=True)
class Configuration:
    """One setting of the levers (see the module docstring)."""

    extractors: tuple[str, ...]
    augment: bool
    class_weight: str | None
    vote: str

    def describe(self) -> str:
        return (f"{' + '.join(self.extractors)}, {'augmented' if self.augment else 'no copies'}, "
                f"class weights {self.class_weight}, {self.vote} vote")


def configurations(prototype: GenreModel, dataset: Dataset, augmented: list[Dataset]) -> list[Configuration]:
    """Every configuration that applies to ``prototype``; the first is its default
    (all levers on, majority vote), which wins ties."""
    extractors = [tuple(dataset.features)] + ([tuple(dataset.features)[:1]] if len(dataset.features) > 1 else [])
    augment = [True, False] if augmented else [False]
    weights = ["balanced", None] if weighs_classes(prototype) else [None]
    return [Configuration(e, a, w, v) for e in extractors for a in augment for w in weights for v in VOTES]


def _configured(prototype: GenreModel, configuration: Configuration) -> GenreModel:
    """``prototype`` with the class weights of ``configuration``."""
    if weighs_classes(prototype):
        return clone(prototype).set_params(class_weight=configuration.class_weight)
    return prototype


def _copies(augmented: list[Dataset], configuration: Configuration) -> list[Dataset]:
    """The degraded copies ``configuration`` trains on, in its columns."""
    return [copy.select(configuration.extractors) for copy in augmented] if configuration.augment else []


def _inner_scores(prototype: GenreModel, train: Dataset, augmented: list[Dataset], candidates: list[Configuration],
                  inner_folds: int, extra: list[Dataset]) -> dict[Configuration, float]:
    """Track balanced accuracy of each candidate by grouped CV over ``train`` alone."""
    scores = {}
    fitted: dict[tuple, dict] = {}  # one CV per refit-worthy setting; the vote reuses it
    for candidate in candidates:
        key = (candidate.extractors, candidate.augment, candidate.class_weight)
        if key not in fitted:
            fitted[key] = grouped_cv(_configured(prototype, candidate), train.select(candidate.extractors),
                                     inner_folds, augmented=_copies(augmented, candidate),
                                     extra=[rows.select(candidate.extractors) for rows in extra]).scores
        suffix = "_soft" if candidate.vote == "soft" else ""
        scores[candidate] = fitted[key][f"track_balanced_accuracy{suffix}"]
    return scores


def nested_cv(prototype: GenreModel, dataset: Dataset, augmented: list[Dataset] = (),
              n_folds: int = N_FOLDS, inner_folds: int = INNER_FOLDS, extra: list[Dataset] = (),
              on_fold: Callable[[], None] = lambda: None) -> dict:
    """Nested grouped CV of ``prototype`` with its levers chosen in each outer fold.

    ``dataset`` holds every extractor the model reads; ``augmented`` are degraded copies
    of its clips (same columns); ``extra`` rows (other music) are in every training set.
    The outer folds are the grouped CV's own
    (:func:`genre_tagger.training.crossval.clip_folds`), so the score compares with it fold for
    fold. Returns the pooled track balanced accuracy over the outer test clips, its
    spread across outer folds, and the configuration each outer fold chose. ``on_fold``
    is called as each outer fold is done.
    """
    augmented = list(augmented)
    candidates = configurations(prototype, dataset, augmented)
    folds = clip_folds(dataset, n_folds)
    track_true, track_pred, per_fold, chosen = [], [], [], []
    for fold in np.unique(folds):
        train, test = dataset.subset(folds != fold), dataset.subset(folds == fold)
        inner = _inner_scores(prototype, train, augmented, candidates, inner_folds, list(extra))
        best = max(candidates, key=lambda c: inner[c])  # max keeps the first of equals: the default
        (proba,), classes = fit_predict(_configured(prototype, best), train.select(best.extractors),
                                        [test.select(best.extractors)], _copies(augmented, best),
                                        [rows.select(best.extractors) for rows in extra])
        tracks, predicted = track_votes(proba, classes, test.groups, best.vote)
        truth = track_labels(test.y, test.groups, tracks)
        track_true.append(truth)
        track_pred.append(predicted)
        per_fold.append(balanced_accuracy(truth, predicted))
        chosen.append({"configuration": best.describe(), "inner_score": inner[best]})
        on_fold()
    return {
        "track_balanced_accuracy": balanced_accuracy(np.concatenate(track_true), np.concatenate(track_pred)),
        "track_balanced_accuracy_std": float(np.std(per_fold)),
        "track_balanced_accuracy_folds": per_fold,
        "chosen": chosen,
        "configurations": len(candidates),
        "folds": len(per_fold),
        "inner_folds": inner_folds,
    }
