"""Ablation: what each lever adds to a model's grouped-CV track balanced accuracy.

A model is trained with all its levers on; each lever is then taken away in turn and
the same grouped CV (the same clip folds) is run again. Each row gives the score with
and without the lever, their difference, and the spread across folds of the per-fold
differences (paired: both runs test the same clips in each fold).

Levers:

- *extra features*: a model that reads several feature extractors, on its first only;
- *augmentation*: without the degraded copies of the training clips;
- *balanced class weights*: a model with a ``class_weight`` parameter, with ``None``;
- *soft vote*: the same predictions decided by the highest mean probability instead of
  the majority of segments (off by default, ``--vote soft``);
- *ensemble*: the ensemble against its best member.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from genre_tagger.hookspecs import GenreModel
from genre_tagger.training.crossval import TrainedModel, grouped_cv, weighs_classes
from genre_tagger.training.dataset import Dataset

KEY = "track_balanced_accuracy"


@dataclass
class LeverEffect:
    """One row of the ablation table: ``model`` with and without ``lever``."""

    model: str
    lever: str
    with_lever: float
    without_lever: float
    delta_std: float  # spread across folds of the per-fold differences

    @property
    def delta(self) -> float:
        return self.with_lever - self.without_lever

    def as_dict(self) -> dict:
        return {"model": self.model, "lever": self.lever, "with": self.with_lever, "without": self.without_lever,
                "delta": self.delta, "delta_std": self.delta_std}


def compare(model: str, lever: str, with_scores: dict, without_scores: dict,
            with_key: str = KEY, without_key: str = KEY) -> LeverEffect:
    """A row from two grouped-CV score dicts over the same folds."""
    differences = np.subtract(with_scores[f"{with_key}_folds"], without_scores[f"{without_key}_folds"])
    return LeverEffect(model, lever, with_scores[with_key], without_scores[without_key], float(np.std(differences)))


def ablate(name: str, prototype: GenreModel, trained: TrainedModel, augmented: list[Dataset]) -> list[LeverEffect]:
    """The effect of each lever that applies to the model ``name`` (estimator
    ``prototype``), as trained in ``trained`` (with ``augmented`` copies of its clips,
    possibly none)."""
    dataset, scores = trained.dataset, trained.cv.scores
    rows = []
    if len(dataset.features) > 1:
        first, *extra = dataset.features
        without = grouped_cv(prototype, dataset.select((first,)), augmented=[a.select((first,)) for a in augmented])
        rows.append(compare(name, f"{', '.join(extra)} features (beside {first})", scores, without.scores))
    if augmented:
        without = grouped_cv(prototype, dataset)
        rows.append(compare(name, "augmentation: degraded copies of the training clips", scores, without.scores))
    if weighs_classes(prototype):
        without = grouped_cv(clone(prototype).set_params(class_weight=None), dataset, augmented=augmented)
        rows.append(compare(name, "balanced class weights", scores, without.scores))
    rows.append(compare(name, "soft vote instead of majority", scores, scores, with_key=f"{KEY}_soft"))
    return rows


def ensemble_effect(ensemble_scores: dict, members: dict[str, TrainedModel]) -> LeverEffect:
    """The ensemble against its best member (by grouped-CV track balanced accuracy)."""
    best = max(members, key=lambda m: members[m].cv.scores[KEY])
    return compare("ensemble", f"ensemble instead of its best member ({best})", ensemble_scores, members[best].cv.scores)
