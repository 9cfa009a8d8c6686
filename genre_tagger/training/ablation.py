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
- *other music in training*: with ``--cross-labels``, without training on those clips
  (they are still scored);
- *ensemble*: the ensemble against its best member.

With ``--cross-labels`` every row also gives the cross-dataset track balanced accuracy
with and without the lever (the same clips, each scored by a model that did not train on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.base import clone

from genre_tagger.hookspecs import GenreModel
from genre_tagger.training.crossval import CrossSet, CrossValidation, TrainedModel, cross_scores, grouped_cv, weighs_classes
from genre_tagger.training.dataset import Dataset

KEY = "track_balanced_accuracy"


@dataclass
class LeverEffect:
    """One row of the ablation table: ``model`` with and without ``lever``, under grouped
    CV (and on the cross-dataset clips, ``None`` without them)."""

    model: str
    lever: str
    with_lever: float
    without_lever: float
    delta_std: float  # spread across folds of the per-fold differences
    cross_with: float | None = None
    cross_without: float | None = None

    @property
    def delta(self) -> float:
        return self.with_lever - self.without_lever

    @property
    def cross_delta(self) -> float | None:
        return None if self.cross_with is None or self.cross_without is None else self.cross_with - self.cross_without

    def as_dict(self) -> dict:
        return {"model": self.model, "lever": self.lever, "with": self.with_lever, "without": self.without_lever,
                "delta": self.delta, "delta_std": self.delta_std, "cross_with": self.cross_with,
                "cross_without": self.cross_without, "cross_delta": self.cross_delta}


def compare(model: str, lever: str, with_scores: dict, without_scores: dict,
            with_key: str = KEY, without_key: str = KEY, cross: tuple[float | None, float | None] = (None, None)) -> LeverEffect:
    """A row from two grouped-CV score dicts over the same folds (and two cross-dataset scores)."""
    differences = np.subtract(with_scores[f"{with_key}_folds"], without_scores[f"{without_key}_folds"])
    return LeverEffect(model, lever, with_scores[with_key], without_scores[without_key], float(np.std(differences)),
                       *cross)


def _cross(cv: CrossValidation, cross: CrossSet | None, key: str = KEY) -> float | None:
    """The cross-dataset track balanced accuracy of a grouped CV (``None`` without clips)."""
    if cv.cross is None or cross is None or not cross.known.any():
        return None
    return cross_scores(cv.cross, cv.classes, cross.known).get(key)


def ablate(name: str, prototype: GenreModel, trained: TrainedModel, augmented: list[Dataset],
           cross: CrossSet | None = None, on_lever: Callable[[str], None] = lambda lever: None) -> list[LeverEffect]:
    """The effect of each lever that applies to the model ``name`` (estimator
    ``prototype``), as trained in ``trained`` (with ``augmented`` copies of its clips,
    possibly none, and the ``cross`` clips). ``on_lever`` is told each lever as its
    grouped CV starts."""
    dataset, cv = trained.dataset, trained.cv
    scores, with_cross = cv.scores, _cross(cv, cross)

    def row(lever: str, without: Callable[[], CrossValidation], without_cross: CrossSet | None = cross) -> LeverEffect:
        on_lever(lever)
        cv_without = without()
        return compare(name, lever, scores, cv_without.scores, cross=(with_cross, _cross(cv_without, without_cross)))

    rows = []
    if len(dataset.features) > 1:
        first, *extra = dataset.features
        narrow = cross.select((first,)) if cross is not None else None
        rows.append(row(f"{', '.join(extra)} features (beside {first})", lambda: grouped_cv(
            prototype, dataset.select((first,)), augmented=[a.select((first,)) for a in augmented], cross=narrow), narrow))
    if augmented:
        rows.append(row("augmentation: degraded copies of the training clips",
                        lambda: grouped_cv(prototype, dataset, cross=cross)))
    if weighs_classes(prototype):
        unweighted = clone(prototype).set_params(class_weight=None)
        rows.append(row("balanced class weights", lambda: grouped_cv(unweighted, dataset, augmented=augmented, cross=cross)))
    if cross is not None and cross.train:
        scored_only = cross.without_training()
        rows.append(row("other music (--cross-labels) in training",
                        lambda: grouped_cv(prototype, dataset, augmented=augmented, cross=scored_only), scored_only))
    rows.append(compare(name, "soft vote instead of majority", scores, scores, with_key=f"{KEY}_soft",
                        cross=(with_cross, _cross(cv, cross, f"{KEY}_soft"))))
    return rows


def ensemble_effect(ensemble_scores: dict, members: dict[str, TrainedModel]) -> LeverEffect:
    """The ensemble against its best member (by grouped-CV track balanced accuracy)."""
    best = max(members, key=lambda m: members[m].cv.scores[KEY])
    return compare("ensemble", f"ensemble instead of its best member ({best})", ensemble_scores, members[best].cv.scores)
