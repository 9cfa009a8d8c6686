"""Training a model on labelled clips and scoring it honestly.

Four ways of scoring, all reported:

1. **grouped CV** -- 5 folds, stratified by genre, where every segment of a clip stays
   in one fold (:class:`genre_tagger.selection.GroupedFolds`): the honest headline;
2. **artist-filtered split** -- train on train+valid, test on test of Kereliuk, Sturm &
   Larsen's split lists (no artist on both sides), only for clips present;
3. **leaky random split** -- 80/20 stratified split of *segments*, as the original study
   did: parts of one song on both sides. Only there to compare with its figures;
4. **unseen source** -- with other music (a :class:`CrossSet`), each of its sources is
   predicted by a model that trained on none of that source's clips
   (:class:`genre_tagger.selection.LeaveOneSourceOut`): the figure choices are made by,
   since the grouped CV's test clips share their training clips' recording chain.

Degraded copies of the clips (:mod:`genre_tagger.training.degrade`) serve twice: as
augmentation, added to a training set for its own clips only (a copy shares its clip's
id, so it always sits on its clip's side of every split, inner ones included); and for
robustness, scored by the grouped CV's models on the test folds.

Models are given as unfitted estimators (prototypes): every fit is of a
``sklearn.base.clone`` of one, so a prototype is never changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from genre_tagger.hookspecs import GenreModel
from genre_tagger.models.voting import track_votes
from genre_tagger.selection import GroupedFolds, LeaveOneSourceOut
from genre_tagger.training.dataset import Dataset, stack
from genre_tagger.training.scoring import scores_by_fold, segment_and_track_scores

N_FOLDS = 5
SEED = 0


@dataclass
class CrossSet:
    """Labelled clips of other music than the training folder's (``retrain --cross-labels``):
    scored beside it, and with ``train`` trained on too.

    ``dataset`` holds every row; ``folds`` deals its clips to the same number of folds as
    the grouped CV (:class:`~genre_tagger.selection.GroupedFolds` over its own clips), so
    that in fold ``f`` the models train on the other folds' clips and test this fold's:
    every cross-dataset score is of clips the model never saw. Only clips of the genres the
    training folder has are trained on; the others (a genre it lacks) are only tested, as
    music outside the known genres. A training set holds each genre's cross rows
    ``weight[genre]`` times, so that in every genre they weigh about as much as the training
    folder's rows of that genre: how a clip was recorded then tells no known genre from
    another (with one weight for all, the genre whose own rows are fewest -- GTZAN's pop --
    would be mostly other music, and other music would be called pop).
    """

    dataset: Dataset
    folds: np.ndarray
    known: np.ndarray  # rows of a genre the training folder has
    train: bool = True
    weight: dict[str, int] = field(default_factory=dict)  # genre -> repeats in a training set
    sources: np.ndarray | None = None  # per row, the label file it came from (None: one source)

    @property
    def source_of_rows(self) -> np.ndarray:
        """The source of each row (``"other"`` for all where there is one)."""
        return np.full(len(self.dataset.y), "other") if self.sources is None else self.sources

    @classmethod
    def of(cls, dataset: Dataset, training_rows: dict[str, int], n_folds: int, train: bool = True,
           sources: np.ndarray | None = None) -> CrossSet:
        """The cross set of ``dataset`` (rows of ``sources``), weighted against
        ``training_rows`` (the training folder's rows per genre in a training set,
        degraded copies included)."""
        known = np.isin(dataset.y, list(training_rows))
        genres, counts = np.unique(dataset.y[known], return_counts=True)
        weight = {str(g): max(1, round(training_rows[g] / n)) for g, n in zip(genres, counts)}
        return cls(dataset, GroupedFolds(n_folds, SEED).folds(dataset.y, dataset.groups), known, train, weight, sources)

    def select(self, extractor_names: tuple[str, ...]) -> CrossSet:
        return CrossSet(self.dataset.select(extractor_names), self.folds, self.known, self.train, self.weight,
                        self.sources)

    def without_training(self) -> CrossSet:
        return CrossSet(self.dataset, self.folds, self.known, False, self.weight, self.sources)

    def training_rows(self, fold: int | None = None, without_source: str | None = None) -> list[Dataset]:
        """The rows a model of ``fold`` trains on (all of them for ``None``: the final fit),
        none of ``without_source``'s."""
        if not self.train:
            return []
        rows = self.known if fold is None else self.known & (self.folds != fold)
        if without_source is not None:
            rows = rows & (self.source_of_rows != without_source)
        return [self.dataset.subset(rows & (self.dataset.y == genre))
                for genre, repeats in self.weight.items() for _ in range(repeats)]


def with_copies(train: Dataset, augmented: list[Dataset], extra: list[Dataset] = ()) -> Dataset:
    """``train``, the rows of ``augmented`` (degraded copies) of the same clips, and ``extra`` rows."""
    if not augmented and not extra:
        return train
    clips = train.clips
    return stack([train] + [copy.subset(np.isin(copy.groups, clips)) for copy in augmented] + list(extra))


def fit(prototype: GenreModel, train: Dataset, augmented: list[Dataset] = (), extra: list[Dataset] = ()) -> GenreModel:
    """A clone of ``prototype`` fitted on ``train`` plus its clips' rows of ``augmented``
    and the ``extra`` rows (of a :class:`CrossSet`)."""
    train = with_copies(train, list(augmented), list(extra))
    return clone(prototype).fit(train.X, train.y, train.groups)


def fit_predict(prototype: GenreModel, train: Dataset, tests: list[Dataset],
                augmented: list[Dataset] = (), extra: list[Dataset] = ()) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`fit`, then probabilities for each of ``tests`` and the model's classes."""
    model = fit(prototype, train, augmented, extra)
    return [model.predict_proba(test.X) for test in tests], np.asarray(model.classes_).astype(str)


def weighs_classes(prototype: GenreModel) -> bool:
    """Whether the model has a ``class_weight`` parameter (the class-weight lever)."""
    return "class_weight" in prototype.get_params()


def _align(proba: np.ndarray, model_classes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Columns of ``proba`` reordered to ``classes`` (zeros for classes the model lacks)."""
    aligned = np.zeros((len(proba), len(classes)))
    aligned[:, np.searchsorted(classes, model_classes)] = proba
    return aligned


def clip_folds(dataset: Dataset, n_folds: int = N_FOLDS) -> np.ndarray:
    """The CV fold of each row of ``dataset`` (:class:`~genre_tagger.selection.GroupedFolds`
    over its clips, or its albums when it has them)."""
    return GroupedFolds(n_folds, SEED).folds(dataset.y, dataset.fold_groups)


def folds_of(rows: Dataset, dataset: Dataset, folds: np.ndarray) -> np.ndarray:
    """The fold of each row of ``rows`` (any rows of ``dataset``'s clips, degraded copies
    included): its clip's fold in ``folds``, the fold of each row of ``dataset``."""
    fold_of_clip = dict(zip(dataset.groups, folds))
    return np.array([fold_of_clip[clip] for clip in rows.groups], dtype=int)


def scores_of(rows: Dataset, proba: np.ndarray, classes: np.ndarray, folds: np.ndarray) -> dict:
    """:func:`~genre_tagger.training.scoring.scores_by_fold` of the out-of-fold ``proba`` of ``rows``."""
    return scores_by_fold(rows.y, proba, classes, rows.groups, folds)


@dataclass
class OutOfFold:
    """Rows of a dataset with their out-of-fold probabilities ``[n_rows, n_classes]`` and
    the fold each row was tested in."""

    rows: Dataset
    proba: np.ndarray
    folds: np.ndarray


@dataclass
class CrossValidation:
    """Scores of a grouped CV and its out-of-fold probabilities ``[n_rows, n_classes]``;
    ``degraded`` holds, per degradation, the out-of-fold probabilities of the test
    clips' degraded copies."""

    scores: dict
    proba: np.ndarray
    classes: np.ndarray
    folds: np.ndarray
    degraded: dict[str, OutOfFold] = field(default_factory=dict)
    cross: OutOfFold | None = None  # every row of the CrossSet, tested in its own fold
    unseen: OutOfFold | None = None  # every row of the CrossSet, by a model that saw none of its source

    def robustness(self) -> dict[str, dict]:
        """Scores with the test folds degraded, per degradation."""
        return {name: scores_of(o.rows, o.proba, self.classes, o.folds) for name, o in self.degraded.items()}


def grouped_cv(
    prototype: GenreModel, dataset: Dataset, n_folds: int = N_FOLDS,
    augmented: list[Dataset] = (), degraded: dict[str, Dataset] | None = None, cross: CrossSet | None = None,
    extra: list[Dataset] = (),
) -> CrossValidation:
    """Clip-grouped, genre-stratified k-fold CV.

    Scores are computed once over the pooled out-of-fold predictions; ``*_std`` give the
    spread of the per-fold scores. ``augmented`` are degraded copies of the clips (same
    columns): each fold trains on its training clips' copies too, never on a test
    clip's. Each fold's model also predicts the test clips' rows of every ``degraded``
    copy (robustness), and the rows of the ``cross`` clips of its fold, having trained on
    those of the other folds (see :class:`CrossSet`). ``extra`` rows are in every training set.
    """
    classes = np.unique(dataset.y)
    proba = np.zeros((len(dataset.y), len(classes)))
    folds = clip_folds(dataset, n_folds)
    degraded = {name: copy.subset(np.isin(copy.groups, dataset.clips)) for name, copy in (degraded or {}).items()}
    degraded_folds = {name: folds_of(copy, dataset, folds) for name, copy in degraded.items()}
    degraded_proba = {name: np.zeros((len(copy.y), len(classes))) for name, copy in degraded.items()}
    cross_proba = np.zeros((len(cross.dataset.y), len(classes))) if cross is not None else None
    for fold in np.unique(folds):
        tests = [dataset.subset(folds == fold)] + [copy.subset(degraded_folds[n] == fold) for n, copy in degraded.items()]
        if cross is not None:
            tests.append(cross.dataset.subset(cross.folds == fold))
        fold_extra = list(extra) + (cross.training_rows(fold) if cross is not None else [])
        fold_probas, model_classes = fit_predict(prototype, dataset.subset(folds != fold), tests, augmented, fold_extra)
        proba[folds == fold] = _align(fold_probas[0], model_classes, classes)
        for name, fold_proba in zip(degraded, fold_probas[1 : 1 + len(degraded)]):
            degraded_proba[name][degraded_folds[name] == fold] = _align(fold_proba, model_classes, classes)
        if cross is not None:
            cross_proba[cross.folds == fold] = _align(fold_probas[-1], model_classes, classes)
    degraded_oof = {name: OutOfFold(degraded[name], degraded_proba[name], degraded_folds[name]) for name in degraded}
    cross_oof = OutOfFold(cross.dataset, cross_proba, cross.folds) if cross is not None else None
    return CrossValidation(scores_of(dataset, proba, classes, folds), proba, classes, folds, degraded_oof, cross_oof)


def unseen_source(prototype: GenreModel, dataset: Dataset, cross: CrossSet, augmented: list[Dataset] = (),
                  final: GenreModel | None = None) -> OutOfFold:
    """Every row of ``cross`` predicted by a model fitted on ``dataset`` (with its
    ``augmented`` copies) and on the cross rows of the *other* sources only
    (:class:`~genre_tagger.selection.LeaveOneSourceOut`). ``final``, the model fitted on
    everything, is reused where it saw no cross row (``cross.train`` off): then the
    figure is the shipped model's own. Rows keep ``cross.folds``, for a spread."""
    classes = np.unique(dataset.y)
    proba = np.zeros((len(cross.dataset.y), len(classes)))
    sources = cross.source_of_rows
    for _, test in LeaveOneSourceOut().split(cross.dataset.X, cross.dataset.y, sources):
        extra = cross.training_rows(without_source=sources[test[0]])
        model = final if final is not None and not cross.train else fit(prototype, dataset, augmented, extra)
        proba[test] = _align(model.predict_proba(cross.dataset.X[test]), np.asarray(model.classes_).astype(str), classes)
    return OutOfFold(cross.dataset, proba, cross.folds)


@dataclass
class SplitResult:
    """Scores on a held-out ``test`` set and the probabilities ``[n_test_rows, n_classes]``."""

    scores: dict
    test: Dataset
    proba: np.ndarray
    classes: np.ndarray


def artist_split(prototype: GenreModel, dataset: Dataset, splits: dict[str, set[str]],
                 augmented: list[Dataset] = (), extra: list[Dataset] = ()) -> SplitResult:
    """Train on the clips of train+valid (and their ``augmented`` copies, and ``extra``
    rows of other music), test on those of test (only clips present)."""
    train_mask, test_mask = split_masks(dataset, splits)
    train, test = dataset.subset(train_mask), dataset.subset(test_mask)
    (proba,), model_classes = fit_predict(prototype, train, [test], augmented, extra)
    scores = segment_and_track_scores(test.y, proba, model_classes, test.groups)
    scores["n_train_tracks"] = int(len(train.clips))
    return SplitResult(scores, test, proba, model_classes)


def split_masks(dataset: Dataset, splits: dict[str, set[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the train+valid clips and rows of the test clips of an artist-filtered split."""
    train_mask = np.isin(dataset.groups, list(splits["train"] | splits["valid"]))
    test_mask = np.isin(dataset.groups, list(splits["test"]))
    if not train_mask.any() or not test_mask.any():
        raise ValueError("the split lists name none of the clips found")
    return train_mask, test_mask


def leaky_split(prototype: GenreModel, dataset: Dataset) -> dict:
    """The original study's 80/20 random split of segments. Leaky: one song on both sides."""
    train_index, test_index = train_test_split(
        np.arange(len(dataset.y)), test_size=0.2, stratify=dataset.y, random_state=SEED
    )
    train, test = dataset.subset(train_index), dataset.subset(test_index)
    (proba,), model_classes = fit_predict(prototype, train, [test])
    scores = segment_and_track_scores(test.y, proba, model_classes, test.groups)
    return {
        "segment_accuracy": scores["segment_accuracy"],
        "segment_balanced_accuracy": scores["segment_balanced_accuracy"],
        "n_segments": scores["n_segments"],
        "leaky": True,
    }


@dataclass
class TrainedModel:
    """A model fitted on the whole dataset, its scores, and the held-out probabilities
    an ensemble is built from."""

    model: GenreModel
    dataset: Dataset
    metrics: dict
    cv: CrossValidation
    artist: SplitResult | None
    seconds: float


def _timed(run: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = run()
    return result, round(time.perf_counter() - started, 1)


def cross_scores(rows: OutOfFold, classes: np.ndarray, known: np.ndarray) -> dict:
    """Scores of out-of-fold predictions of other music: over its clips of the genres the
    models know, track scores as the grouped CV's (balanced accuracy, recall per genre);
    for the others, which genres they were given (they should come out unknown)."""
    known_rows = rows.rows.subset(known)
    scores = scores_by_fold(known_rows.y, rows.proba[known], classes, known_rows.groups, rows.folds[known]) \
        if known.any() else {}
    outside = {}
    for label in sorted(set(rows.rows.y[~known])):
        mask = rows.rows.y == label
        _, predicted = track_votes(rows.proba[mask], classes, rows.rows.groups[mask])
        outside[str(label)] = {str(g): int(n) for g, n in zip(*np.unique(predicted, return_counts=True))}
    return dict(scores, genres=sorted(set(map(str, known_rows.y))), outside_genres=outside)


def train_and_score(
    prototype: GenreModel, dataset: Dataset, splits: dict[str, set[str]] | None,
    augmented: list[Dataset] = (), degraded: dict[str, Dataset] | None = None, cross: CrossSet | None = None,
    leaky: bool = True,
) -> TrainedModel:
    """Score ``prototype`` three ways (four with ``cross``; the leaky split only with
    ``leaky``), then fit it on every clip of ``dataset`` (and of ``cross``, when it is
    trained on).

    ``augmented`` (degraded copies of the clips) are added to every training set except
    the leaky split's, which reproduces the original study; ``degraded`` copies are
    scored by the grouped CV's models (``metrics["robustness"]``); the ``cross`` clips by
    the grouped CV's models too, each by the one that did not train on it
    (``metrics["cross_dataset"]``, in-source where ``cross.train``: other clips of the same
    source trained those models), and by models that saw none of its source
    (``metrics["unseen_source"]``).
    """
    started = time.perf_counter()
    cv, seconds = _timed(lambda: grouped_cv(prototype, dataset, augmented=augmented, degraded=degraded, cross=cross))
    metrics = {"grouped_cv": dict(cv.scores, seconds=seconds)}
    if cv.degraded:
        metrics["robustness"] = cv.robustness()
    if cv.cross is not None:
        metrics["cross_dataset"] = dict(cross_scores(cv.cross, cv.classes, cross.known), trained_on=cross.train,
                                        weight=cross.weight)
    extra = cross.training_rows() if cross is not None else []
    artist = None
    if splits:
        artist, seconds = _timed(lambda: artist_split(prototype, dataset, splits, augmented, extra))
        metrics["artist_split"] = dict(artist.scores, seconds=seconds)
    if leaky:
        scores, seconds = _timed(lambda: leaky_split(prototype, dataset))
        metrics["leaky_random_split"] = dict(scores, seconds=seconds)
    model = fit(prototype, dataset, augmented, extra)
    if cross is not None:
        cv.unseen = unseen_source(prototype, dataset, cross, augmented, final=model)
        metrics["unseen_source"] = dict(cross_scores(cv.unseen, cv.classes, cross.known),
                                        sources=sorted(set(map(str, cross.source_of_rows))))
    return TrainedModel(model, dataset, metrics, cv, artist, time.perf_counter() - started)
