"""Fitting a model's assessor (:mod:`genre_tagger.models.assessment`) and measuring it
honestly, from the grouped CV's out-of-fold tracks.

The tracks measured are the grouped CV's out-of-fold tracks of the training folder
("train") and their degraded copies ("degraded:<name>"), and the other music ("cross")
as predicted by models that saw none of its source (the unseen-source predictions): a
threshold or a calibration chosen on music whose source trained the model rewards that
source's recording chain.

- **Calibration**: in each fold, the calibrator is fitted on the other folds' tracks (the
  training folder's and the other music's of known genres, each source weighing as
  much in all; degraded copies aside) and applied to this fold's; the expected calibration error (ECE) and reliability diagram of those
  calibrated confidences are reported for each dataset. Isotonic regression and Platt
  scaling are both measured that way, and the one of lower mean ECE is shipped, fitted on
  every out-of-fold track (a choice made on the same folds: said in the model card).
- **Novelty**: in each fold, the detector is fitted on that fold's training rows and their
  degraded copies, and measures this fold's tracks and copies, so known music is
  measured as unseen music is. Each view's distances are divided by their median over
  known tracks.
- **Thresholds**: ``not_music`` lies above every training-folder track's distance over
  all columns, degraded copies included (its largest, times :data:`NOT_MUSIC_MARGIN`);
  ``outside`` is one of the quantiles of those tracks' first-view novelty, so no clip of
  another genre ever chooses it; ``outside`` and ``min_confidence`` are the pair that
  tags the most unseen-source tracks of known genres correctly among those with at least
  :data:`MIN_COVERAGE` of them tagged, those that keep every degraded copy's share tagged
  within :data:`MAX_COVERAGE_DROP` of the clean clips' first (chosen on the reported
  clips: said in the model card). The rates at those thresholds are recorded: the share of known
  tracks tagged and how often their tags are right, the share of music of other genres
  left untagged, and the risk-coverage table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from genre_tagger.models.assessment import (
    Assessor, Calibrator, Novelty, OutsideLayer, expected_calibration_error, reliability, risk_coverage,
)
from genre_tagger.models.voting import tally
from genre_tagger.pipeline.analysis import one_blas_thread
from genre_tagger.plugins import registry
from genre_tagger.training.crossval import CrossSet, TrainedModel
from genre_tagger.training.dataset import Dataset

METHODS = ("isotonic", "platt")
MIN_COVERAGE = 0.75
MAX_COVERAGE_DROP = 0.05  # the most a degraded copy's share tagged may fall below the clean clips'
NOT_MUSIC_MARGIN = 1.5
OUTSIDE_QUANTILES = (0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 1.0)
CONFIDENCE_GRID = tuple(np.round(np.arange(0.0, 0.95, 0.05), 2))


@dataclass
class Tracks:
    """Out-of-fold tracks: per track its ``source`` ("train" or "cross"), label, fold,
    predicted genre (majority vote), its ``score`` (the mean probability of that genre),
    whether the label is a ``known`` genre, and its novelty per view."""

    source: np.ndarray
    label: np.ndarray
    fold: np.ndarray
    genre: np.ndarray
    score: np.ndarray
    known: np.ndarray
    novelty: np.ndarray  # [n_tracks, n_views]

    @property
    def correct(self) -> np.ndarray:
        return self.genre == self.label


def views_of(dataset: Dataset) -> list[tuple[int, int]]:
    """The novelty views of a model's columns: all of them, twice where an extractor offers
    outside-genre evidence (which then replaces the first, see :class:`Novelty`). One
    distance over every column judges "not music": a single extractor's (GTZAN's 57
    statistics) put real music of another recording chain as far out as tones and speech."""
    total = sum(rows.shape[1] for rows in dataset.features.values())
    return [(0, total)] * (2 if outside_layer_of(dataset) is not None else 1)


def outside_layer_of(dataset: Dataset) -> OutsideLayer | None:
    """The outside-genre evidence of the first of the model's extractors that offers one
    (``outside_genre_layer``, see :mod:`genre_tagger.hookspecs`), over its columns."""
    classes = sorted(set(map(str, dataset.y)))
    start = 0
    for name, rows in dataset.features.items():
        extractor = registry().feature_extractors.get(name)
        layer = getattr(extractor, "outside_genre_layer", None)
        found = layer(classes) if layer is not None else None
        if found is not None:
            return OutsideLayer(start, start + rows.shape[1], *found)
        start += rows.shape[1]
    return None


def detector(X: np.ndarray, y: np.ndarray, dataset: Dataset) -> Novelty:
    """A novelty detector of the model that reads ``dataset``'s columns, fitted on ``X``, ``y``."""
    return Novelty.fit(X, y, views_of(dataset), outside_layer_of(dataset))


def _track_rows(rows: Dataset, proba: np.ndarray, folds: np.ndarray, classes: np.ndarray):
    """Per track of ``rows``: ``(id, label, fold, voted genre, its mean probability, row indices)``."""
    tracks, inverse = np.unique(rows.groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    for track, index in zip(tracks, np.split(order, np.cumsum(np.bincount(inverse))[:-1])):
        votes, mean = tally(proba[index])
        winner = int(np.lexsort((np.arange(len(classes)), -mean, -votes))[0])
        yield track, str(rows.y[index[0]]), int(folds[index[0]]), str(classes[winner]), float(mean[winner]), index


def out_of_fold_tracks(trained: TrainedModel, cross: CrossSet | None) -> Tracks:
    """The grouped CV's tracks and their degraded copies, with their novelty measured by
    each fold's own detector, and the other music's unseen-source tracks, measured by a
    detector that saw none of their source."""
    cv, dataset = trained.cv, trained.dataset
    every = np.ones(len(dataset.y), bool)
    parts = [("train", dataset, cv.proba, cv.folds, every, None)]
    parts += [(f"degraded:{name}", copy.rows, copy.proba, copy.folds, np.ones(len(copy.rows.y), bool), None)
              for name, copy in cv.degraded.items()]
    detectors = {fold: detector(*_training_rows(trained, fold, cross), dataset) for fold in np.unique(cv.folds)}
    if cv.unseen is not None:
        parts.append(("cross", cv.unseen.rows, cv.unseen.proba, cv.unseen.folds, cross.known,
                      _unseen_detectors(trained, cross)))
    columns: dict[str, list] = {k: [] for k in ("source", "label", "fold", "genre", "score", "known", "novelty")}
    for source, rows, proba, folds, known_rows, by_source in parts:
        distances = np.zeros((len(rows.y), len(views_of(dataset))))
        if by_source is None:  # every row measured by its own fold's detector, at once
            for fold, fold_detector in detectors.items():
                distances[folds == fold] = fold_detector.distances(rows.X[folds == fold])
        else:
            for name, source_detector in by_source.items():
                mine = cross.source_of_rows == name
                distances[mine] = source_detector.distances(rows.X[mine])
        for track, label, fold, genre, score, index in _track_rows(rows, proba, folds, cv.classes):
            columns["source"].append(source)
            columns["label"].append(label)
            columns["fold"].append(fold)
            columns["genre"].append(genre)
            columns["score"].append(score)
            columns["known"].append(bool(known_rows[index[0]]))
            columns["novelty"].append(distances[index].mean(axis=0))
    return Tracks(*(np.array(columns[k]) for k in ("source", "label", "fold", "genre", "score", "known")),
                  np.vstack(columns["novelty"]))


def _training_rows(trained: TrainedModel, fold: int | None, cross: CrossSet | None,
                   without_source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: the rows a detector of ``fold`` (``None``: of the final model) is fitted
    on: the training folder's clips outside that fold, their degraded copies (so that a
    band-limited, lossy or loud recording of known music is not far from it), and the
    cross rows a model of that fold trained on (but ``without_source``'s)."""
    dataset, cv = trained.dataset, trained.cv
    mine = np.ones(len(dataset.y), bool) if fold is None else cv.folds != fold
    X, y = [dataset.X[mine]], [dataset.y[mine]]
    for copy in cv.degraded.values():
        kept = np.ones(len(copy.rows.y), bool) if fold is None else copy.folds != fold
        X.append(copy.rows.X[kept])
        y.append(copy.rows.y[kept])
    if cross is not None and cross.train:
        rows = cross.known & (np.ones(len(cross.folds), bool) if fold is None else cross.folds != fold)
        if without_source is not None:
            rows &= cross.source_of_rows != without_source
        X.append(cross.dataset.X[rows])
        y.append(cross.dataset.y[rows])
    return np.vstack(X), np.concatenate(y)


def _unseen_detectors(trained: TrainedModel, cross: CrossSet) -> dict[str, Novelty]:
    """Per source of ``cross``, a detector fitted on every training row but that source's."""
    return {str(name): detector(*_training_rows(trained, None, cross, without_source=name), trained.dataset)
            for name in np.unique(cross.source_of_rows)}


def _source_weights(tracks: Tracks, mask: np.ndarray) -> np.ndarray:
    """Per track of ``mask``, a weight that makes each source count as much in all: the
    other music, which a user's library is like, as much as the training folder."""
    sources = tracks.source[mask]
    counts = {source: (sources == source).sum() for source in np.unique(sources)}
    return np.array([len(sources) / (len(counts) * counts[source]) for source in sources])


def _undegraded(tracks: Tracks) -> np.ndarray:
    """Tracks that are not degraded copies: a copy would count its clip twice."""
    return ~np.char.startswith(tracks.source.astype(str), "degraded:")


def _calibrator(tracks: Tracks, mask: np.ndarray, method: str) -> Calibrator:
    return Calibrator.fit(tracks.score[mask], tracks.correct[mask], method, _source_weights(tracks, mask))


def _calibrated(tracks: Tracks, method: str) -> np.ndarray:
    """Each track's confidence from a calibrator fitted on the other folds' known tracks,
    bounded as the shipped one is (:func:`max_confidence`)."""
    out = np.empty(len(tracks.score))
    for fold in np.unique(tracks.fold):
        fitted_on = tracks.known & _undegraded(tracks) & (tracks.fold != fold)
        calibrator = _calibrator(tracks, fitted_on, method)
        out[tracks.fold == fold] = np.minimum(calibrator(tracks.score[tracks.fold == fold]), max_confidence(fitted_on.sum()))
    return out


def max_confidence(n_tracks: int) -> float:
    """The most a confidence measured on ``n_tracks`` held-out tracks can claim: ``1 - 3/n``,
    the rule of three's 95 % lower bound of an accuracy measured with every track right."""
    return max(0.0, 1 - 3 / max(int(n_tracks), 1))


def _calibration(tracks: Tracks) -> tuple[str, np.ndarray, dict]:
    """The method of lower mean ECE, its out-of-fold confidences, and the measurements."""
    measured = {}
    for method in METHODS:
        confidence = _calibrated(tracks, method)
        per_source = {}
        for source in np.unique(tracks.source):
            mask = tracks.known & (tracks.source == source)
            per_source[str(source)] = {"ece": expected_calibration_error(confidence[mask], tracks.correct[mask]),
                                       "reliability": reliability(confidence[mask], tracks.correct[mask]),
                                       "tracks": int(mask.sum())}
        measured[method] = (confidence, per_source)
    undegraded = set(map(str, tracks.source[_undegraded(tracks)]))
    best = min(METHODS, key=lambda m: np.mean([v["ece"] for s, v in measured[m][1].items() if s in undegraded]))
    return best, measured[best][0], {m: {s: v["ece"] for s, v in measured[m][1].items()} for m in METHODS} | {
        "shipped": best, "by_source": measured[best][1]}


def _rates(tracks: Tracks, confidence: np.ndarray, novelty: np.ndarray, outside: float, not_music: float,
           min_confidence: float) -> dict:
    """What the thresholds do, per source: the share of known tracks tagged, how often
    those tags are right, the share of tracks of other genres left untagged."""
    tagged = (novelty[:, 0] <= outside) & (novelty[:, -1] <= not_music) & (confidence >= min_confidence)
    rates = {}
    for source in np.unique(tracks.source):
        mine = tracks.source == source
        known, other = mine & tracks.known, mine & ~tracks.known
        entry = {"known_tagged": float(tagged[known].mean()) if known.any() else None,
                 "tags_right": float(tracks.correct[known & tagged].mean()) if (known & tagged).any() else None}
        if other.any():
            entry["other_genres_untagged"] = float(1 - tagged[other].mean())
        rates[str(source)] = entry
    return rates


def fit_assessor(trained: TrainedModel, cross: CrossSet | None) -> tuple[Assessor, Novelty, dict]:
    """The assessor and novelty detector of a trained model, and what they were measured to do."""
    # BLAS on one thread, as an analysis runs it: its pool spinning against other work on
    # a shared machine made the covariances many times slower
    with one_blas_thread():
        return _fit_assessor(trained, cross)


def _fit_assessor(trained: TrainedModel, cross: CrossSet | None) -> tuple[Assessor, Novelty, dict]:
    tracks = out_of_fold_tracks(trained, cross)
    known = tracks.known
    training_folder = known & (tracks.source != "cross")  # and its degraded copies
    scales = np.median(tracks.novelty[known & (tracks.source == "train")], axis=0)
    novelty = tracks.novelty / scales
    method, confidence, calibration = _calibration(tracks)
    not_music = float(novelty[training_folder, -1].max() * NOT_MUSIC_MARGIN)
    outside, min_confidence = _choose_thresholds(tracks, confidence, novelty, not_music, training_folder)
    metrics = {"calibration": calibration, "thresholds": {"outside": outside, "not_music": not_music,
                                                          "min_confidence": min_confidence}}
    metrics["rates"] = _rates(tracks, confidence, novelty, outside, not_music, min_confidence)
    metrics["risk_coverage"] = {str(s): risk_coverage(confidence[known & (tracks.source == s)],
                                                      tracks.correct[known & (tracks.source == s)])
                                for s in np.unique(tracks.source)}
    other = (tracks.source == "cross") & ~known
    if other.any() and (known & (tracks.source == "cross")).any():
        mask = (tracks.source == "cross")
        metrics["outside_auroc"] = float(roc_auc_score(~known[mask], novelty[mask, 0]))
    final = detector(*_training_rows(trained, None, cross), trained.dataset)
    final.scales = scales.tolist()
    metrics["outside_evidence"] = "tags" if final.outside_layer is not None else "distance"
    measured = int((known & _undegraded(tracks)).sum())
    assessor = Assessor(_calibrator(tracks, known & _undegraded(tracks), method), outside, not_music, min_confidence,
                        max_confidence=max_confidence(measured))
    metrics["thresholds"]["max_confidence"] = assessor.max_confidence
    metrics["tracks_measured"] = measured
    return assessor, final, metrics


def _choose_thresholds(tracks: Tracks, confidence: np.ndarray, novelty: np.ndarray, not_music: float,
                       training_folder: np.ndarray) -> tuple[float, float]:
    """``(outside, min_confidence)``: see the module docstring (on the unseen-source
    clips, or the training folder's tracks without them). Pairs that tag every degraded
    copy of the test folds within :data:`MAX_COVERAGE_DROP` of the clean clips come first:
    a refusal that fires on a band-limited or loud file judges the recording, not the genre."""
    source = "cross" if (tracks.known & (tracks.source == "cross")).any() else "train"
    mine = tracks.known & (tracks.source == source)
    chains = [tracks.known & (tracks.source == s)  # the clean clips first
              for s in ["train"] + sorted(s for s in set(map(str, tracks.source)) if s.startswith("degraded:"))]
    levels = sorted({float(np.quantile(novelty[training_folder, 0], q)) for q in OUTSIDE_QUANTILES})
    best, best_key = (levels[-1], 0.0), (False, -1.0, -1.0)
    for outside in levels:
        for min_confidence in CONFIDENCE_GRID:
            passes = (novelty[:, 0] <= outside) & (novelty[:, -1] <= not_music) & (confidence >= min_confidence)
            tagged = mine & passes
            coverage = tagged.sum() / max(mine.sum(), 1)
            if coverage < MIN_COVERAGE or not tagged.any():
                continue
            by_chain = [passes[chain].mean() for chain in chains if chain.any()]
            robust = bool(not by_chain or min(by_chain) >= by_chain[0] - MAX_COVERAGE_DROP)
            key = (robust, float(tracks.correct[tagged].mean()), coverage)
            if key > best_key:
                best, best_key = (outside, float(min_confidence)), key
    return best
