"""Training models on a labelled folder and scoring them honestly.

Three ways of scoring, all reported:

1. **grouped CV** -- 5 folds, stratified by genre, where every segment of a clip stays
   in one fold: the honest headline;
2. **artist-filtered split** -- train on train+valid, test on test of Kereliuk, Sturm &
   Larsen's split lists (no artist on both sides), only for clips present;
3. **leaky random split** -- 80/20 stratified split of *segments*, as the original study
   did: parts of one song on both sides. Only there to compare with its figures.

Degraded copies of the clips (:mod:`genre_tagger.degrade`) serve twice: as augmentation,
added to a training set for its own clips only (a copy shares its clip's id, so it
always sits on its clip's side of every split, inner ones included); and for
robustness, scored by the grouped CV's models on the test folds.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from genre_tagger import cache as cache_module
from genre_tagger.analysis import selection_name
from genre_tagger.dataset import Clip
from genre_tagger.hookspecs import FeatureExtractor, GenreModel
from genre_tagger.metrics import segment_and_track_scores
from genre_tagger.workers import Analysed, analyse_many

N_FOLDS = 5
SEED = 0


@dataclass
class Dataset:
    """Feature rows of labelled clips: per extractor its columns ``[n_segments,
    n_features]`` in ``features``, and per row its genre ``y``, clip id ``groups`` and
    position ``segment`` in the clip.

    ``X`` puts the extractors' columns side by side in the order of ``features``, the
    order a model names them in its ``feature_extractors``.
    """

    features: dict[str, np.ndarray]
    versions: dict[str, str]  # extractor name -> version
    y: np.ndarray
    groups: np.ndarray
    segment: np.ndarray
    failures: list[str] = field(default_factory=list)
    n_duplicates_dropped: int = 0

    @property
    def X(self) -> np.ndarray:
        return np.hstack(list(self.features.values()))

    @property
    def clips(self) -> np.ndarray:
        return np.unique(self.groups)

    def subset(self, mask: np.ndarray) -> "Dataset":
        return Dataset(
            {name: rows[mask] for name, rows in self.features.items()}, self.versions,
            self.y[mask], self.groups[mask], self.segment[mask],
        )

    def select(self, extractor_names: tuple[str, ...]) -> "Dataset":
        """The columns of ``extractor_names`` only, in that order."""
        return Dataset(
            {name: self.features[name] for name in extractor_names}, {name: self.versions[name] for name in extractor_names},
            self.y, self.groups, self.segment, self.failures, self.n_duplicates_dropped,
        )

    def keys(self) -> np.ndarray:
        """``"<clip id>#<segment>"`` per row: the same segment in other datasets."""
        return np.char.add(np.char.add(self.groups.astype(str), "#"), self.segment.astype(str))

    def summary(self) -> dict:
        """Counts of clips and segments per genre, for metrics files and model cards."""
        clip_genre = {g: y for g, y in zip(self.groups, self.y)}
        genres, clip_counts = np.unique(list(clip_genre.values()), return_counts=True)
        _, segment_counts = np.unique(self.y, return_counts=True)
        return {
            "n_clips": int(len(clip_genre)),
            "n_segments": int(len(self.y)),
            "clips_per_genre": {str(g): int(c) for g, c in zip(genres, clip_counts)},
            "segments_per_genre": {str(g): int(c) for g, c in zip(genres, segment_counts)},
            "duplicate_rows_dropped": self.n_duplicates_dropped,
            "failed_clips": len(self.failures),
        }


def build_dataset(
    clips: list[Clip],
    extractors: list[FeatureExtractor],
    cache: cache_module.Cache,
    jobs: int = 1,
    on_progress: Callable[[Clip, Analysed | None], None] | None = None,
    degradation: str | None = None,
) -> Dataset:
    """Features of every segment of every clip by each of ``extractors``, from the cache
    where possible; each clip missing from the cache is decoded once for all of them.

    With ``degradation`` (see :mod:`genre_tagger.degrade`), the features are those of a
    degraded copy of each clip. Clips that fail to decode are listed in ``failures`` and
    left out. ``on_progress(clip, result)`` is called once per clip (result ``None``
    when cached).
    """
    selection = selection_name(None, degradation)
    keys = {e.name: cache_module.features_key(e.name, e.version) for e in extractors}
    features: dict[Path, dict[str, np.ndarray]] = {}
    todo = []
    by_path = {clip.path: clip for clip in clips}
    for clip in clips:
        file_key = cache_module.file_key(clip.path)
        cached = {name: cache.get_features(file_key, key, selection) for name, key in keys.items()}
        if all(rows is not None for rows in cached.values()):
            features[clip.path] = cached
            if on_progress:
                on_progress(clip, None)
        else:
            todo.append(clip.path)
    failures = []
    for result in analyse_many(todo, list(keys), None, jobs, degradation=degradation):
        if result.error:
            failures.append(result.error)
        else:
            features[result.path] = result.features.features
            file_key = cache_module.file_key(result.path)
            for name, key in keys.items():
                cache.put_features(file_key, key, selection, features[result.path][name])
        if on_progress:
            on_progress(by_path[result.path], result)
    ordered = [clip for clip in clips if clip.path in features]
    if not ordered:
        raise ValueError("no clip could be analysed")
    counts = [len(features[c.path][extractors[0].name]) for c in ordered]
    return Dataset(
        {e.name: np.vstack([features[c.path][e.name] for c in ordered]) for e in extractors},
        {e.name: e.version for e in extractors},
        y=np.repeat([c.genre for c in ordered], counts),
        groups=np.repeat([c.clip_id for c in ordered], counts),
        segment=np.concatenate([np.arange(n) for n in counts]),
        failures=failures,
    )


def drop_duplicate_rows(dataset: Dataset) -> Dataset:
    """Remove exact duplicate feature rows (keeping the first), as the original study did.

    GTZAN repeats some excerpts; identical rows would otherwise be able to sit in train
    and test at once.
    """
    _, first = np.unique(dataset.X, axis=0, return_index=True)
    keep = np.zeros(len(dataset.y), dtype=bool)
    keep[first] = True
    deduplicated = dataset.subset(keep)
    deduplicated.failures = dataset.failures
    deduplicated.n_duplicates_dropped = int((~keep).sum())
    return deduplicated


def stack(datasets: list[Dataset]) -> Dataset:
    """The rows of ``datasets`` (with the same columns) one after the other."""
    first = datasets[0]
    return Dataset(
        {name: np.vstack([d.features[name] for d in datasets]) for name in first.features}, first.versions,
        np.concatenate([d.y for d in datasets]), np.concatenate([d.groups for d in datasets]),
        np.concatenate([d.segment for d in datasets]),
    )


def _with_copies(train: Dataset, augmented: list[Dataset]) -> Dataset:
    """``train`` and the rows of ``augmented`` (degraded copies) of the same clips."""
    if not augmented:
        return train
    clips = train.clips
    return stack([train] + [copy.subset(np.isin(copy.groups, clips)) for copy in augmented])


def fit_predict(model_class: type[GenreModel], train: Dataset, tests: list[Dataset],
                augmented: list[Dataset] = ()) -> tuple[list[np.ndarray], np.ndarray]:
    """Fit on ``train`` (plus its clips' rows of ``augmented``); probabilities for each of ``tests``."""
    train = _with_copies(train, list(augmented))
    model = model_class().fit(train.X, train.y, train.groups)
    return [model.predict_proba(test.X) for test in tests], np.asarray(model.classes_).astype(str)


def _align(proba: np.ndarray, model_classes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Columns of ``proba`` reordered to ``classes`` (zeros for classes the model lacks)."""
    aligned = np.zeros((len(proba), len(classes)))
    aligned[:, np.searchsorted(classes, model_classes)] = proba
    return aligned


def clip_folds(dataset: Dataset, n_folds: int = N_FOLDS) -> np.ndarray:
    """The CV fold of each row: clips are dealt to folds stratified by genre.

    Folds depend only on the clips and their genres, so datasets of different features
    over the same clips get the same folds (which the ensemble relies on).
    """
    clips, first = np.unique(dataset.groups, return_index=True)
    genres = dataset.y[first]
    n_folds = min(n_folds, int(np.unique(genres, return_counts=True)[1].max()))
    clip_fold = np.empty(len(clips), dtype=int)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=SEED)
    with warnings.catch_warnings():  # a genre with fewer clips than folds is fine here
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, test) in enumerate(splitter.split(clips, genres)):
            clip_fold[test] = fold
    return clip_fold[np.searchsorted(clips, dataset.groups)]


def folds_of(rows: Dataset, dataset: Dataset, folds: np.ndarray) -> np.ndarray:
    """The fold of each row of ``rows`` (any rows of ``dataset``'s clips, degraded copies
    included): its clip's fold in ``folds``, the fold of each row of ``dataset``."""
    fold_of_clip = dict(zip(dataset.groups, folds))
    return np.array([fold_of_clip[clip] for clip in rows.groups], dtype=int)


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

    def robustness(self) -> dict[str, dict]:
        """Scores with the test folds degraded, per degradation."""
        return {name: scores_by_fold(o.rows, o.proba, self.classes, o.folds) for name, o in self.degraded.items()}


def grouped_cv(
    model_class: type[GenreModel], dataset: Dataset, n_folds: int = N_FOLDS,
    augmented: list[Dataset] = (), degraded: dict[str, Dataset] | None = None,
) -> CrossValidation:
    """Clip-grouped, genre-stratified k-fold CV.

    Scores are computed once over the pooled out-of-fold predictions; ``*_std`` give the
    spread of the per-fold scores. ``augmented`` are degraded copies of the clips (same
    columns): each fold trains on its training clips' copies too, never on a test
    clip's. Each fold's model also predicts the test clips' rows of every ``degraded``
    copy (robustness).
    """
    classes = np.unique(dataset.y)
    proba = np.zeros((len(dataset.y), len(classes)))
    folds = clip_folds(dataset, n_folds)
    degraded = {name: copy.subset(np.isin(copy.groups, dataset.clips)) for name, copy in (degraded or {}).items()}
    degraded_folds = {name: folds_of(copy, dataset, folds) for name, copy in degraded.items()}
    degraded_proba = {name: np.zeros((len(copy.y), len(classes))) for name, copy in degraded.items()}
    for fold in np.unique(folds):
        tests = [dataset.subset(folds == fold)] + [copy.subset(degraded_folds[n] == fold) for n, copy in degraded.items()]
        fold_probas, model_classes = fit_predict(model_class, dataset.subset(folds != fold), tests, augmented)
        proba[folds == fold] = _align(fold_probas[0], model_classes, classes)
        for name, fold_proba in zip(degraded, fold_probas[1:]):
            degraded_proba[name][degraded_folds[name] == fold] = _align(fold_proba, model_classes, classes)
    degraded_oof = {name: OutOfFold(degraded[name], degraded_proba[name], degraded_folds[name]) for name in degraded}
    return CrossValidation(scores_by_fold(dataset, proba, classes, folds), proba, classes, folds, degraded_oof)


def scores_by_fold(dataset: Dataset, proba: np.ndarray, classes: np.ndarray, folds: np.ndarray) -> dict:
    """Scores of pooled out-of-fold ``proba``, with the spread across ``folds`` (``*_std``)."""
    scores = segment_and_track_scores(dataset.y, proba, classes, dataset.groups)
    per_fold = [
        segment_and_track_scores(dataset.y[folds == f], proba[folds == f], classes, dataset.groups[folds == f])
        for f in np.unique(folds)
    ]
    for key in ("segment_accuracy", "track_accuracy", "track_balanced_accuracy", "track_macro_f1",
                "track_balanced_accuracy_soft"):
        scores[f"{key}_std"] = float(np.std([fold[key] for fold in per_fold]))
    for key in ("track_balanced_accuracy", "track_balanced_accuracy_soft"):  # for the ablation's paired differences
        scores[f"{key}_folds"] = [float(fold[key]) for fold in per_fold]
    scores["folds"] = int(len(per_fold))
    return scores


@dataclass
class SplitResult:
    """Scores on a held-out ``test`` set and the probabilities ``[n_test_rows, n_classes]``."""

    scores: dict
    test: Dataset
    proba: np.ndarray
    classes: np.ndarray


def artist_split(model_class: type[GenreModel], dataset: Dataset, splits: dict[str, set[str]],
                 augmented: list[Dataset] = ()) -> SplitResult:
    """Train on the clips of train+valid (and their ``augmented`` copies), test on those
    of test (only clips present)."""
    train_mask, test_mask = split_masks(dataset, splits)
    train, test = dataset.subset(train_mask), dataset.subset(test_mask)
    (proba,), model_classes = fit_predict(model_class, train, [test], augmented)
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


def leaky_split(model_class: type[GenreModel], dataset: Dataset) -> dict:
    """The original study's 80/20 random split of segments. Leaky: one song on both sides."""
    train_index, test_index = train_test_split(
        np.arange(len(dataset.y)), test_size=0.2, stratify=dataset.y, random_state=SEED
    )
    train, test = dataset.subset(train_index), dataset.subset(test_index)
    (proba,), model_classes = fit_predict(model_class, train, [test])
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


def train_and_score(
    model_class: type[GenreModel], dataset: Dataset, splits: dict[str, set[str]] | None,
    augmented: list[Dataset] = (), degraded: dict[str, Dataset] | None = None,
) -> TrainedModel:
    """Score ``model_class`` three ways, then fit it on every clip of ``dataset``.

    ``augmented`` (degraded copies of the clips) are added to every training set except
    the leaky split's, which reproduces the original study; ``degraded`` copies are
    scored by the grouped CV's models (``metrics["robustness"]``).
    """
    started = time.perf_counter()
    cv, seconds = _timed(lambda: grouped_cv(model_class, dataset, augmented=augmented, degraded=degraded))
    metrics = {"grouped_cv": dict(cv.scores, seconds=seconds)}
    if cv.degraded:
        metrics["robustness"] = cv.robustness()
    artist = None
    if splits:
        artist, seconds = _timed(lambda: artist_split(model_class, dataset, splits, augmented))
        metrics["artist_split"] = dict(artist.scores, seconds=seconds)
    leaky, seconds = _timed(lambda: leaky_split(model_class, dataset))
    metrics["leaky_random_split"] = dict(leaky, seconds=seconds)
    everything = _with_copies(dataset, list(augmented))
    model = model_class().fit(everything.X, everything.y, everything.groups)
    return TrainedModel(model, dataset, metrics, cv, artist, time.perf_counter() - started)
