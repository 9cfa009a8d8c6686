"""How well do the models do on the user's own labelled collection?

Map of this module::

    labels.Labels ──► evaluate() ──► Evaluation (to_dict() for --json)
                        │
                        ├─ split_missing()      files that do not exist: listed, not fatal
                        └─ per model: evaluate_model() ──► ModelEvaluation
                             ├─ predict_tracks()    models.predicting.predict_files: scan's
                             │                      cached prediction, else cached features,
                             │                      else analysis; cached as `scan` does;
                             │                      each track assessed as `scan` does
                             │                      (calibrated confidence, tagged or why not)
                             ├─ scores.score()      accuracy, balanced accuracy (+ bootstrap
                             │                      95 % interval), macro-F1, per class,
                             │                      confusion matrix
                             ├─ scores.trust()      calibration (ECE, reliability), the share
                             │                      tagged and how often right, risk-coverage,
                             │                      labels outside the model's genres left
                             │                      untagged (they are predicted, not scored)
                             └─ with adjust_priors: priors.shift_priors() then score() again

Predictions are shared with ``genre-tagger scan`` through the cache: the same key (file
path, size, mtime), model key (``name@checksum``) and settings (``spread10`` for the
default 10 segments), so evaluating a scanned collection analyses nothing, and a scan
after an evaluation is served from the cache too. Features are cached as well (per
extractor, as ``retrain`` caches them), so ``--model all`` decodes each file once per
feature extractor. Ensembles get the features of every extractor their members read.
Silent, undecodable and missing files are listed and left out of the scores, as are
labels the model has no class for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from genre_tagger.evaluation.labels import LabelledTrack, Labels, counts
from genre_tagger.evaluation.priors import PriorShift, collection_prior, shift_priors, training_prior
from genre_tagger.evaluation.scores import BOOTSTRAP_SEED, N_BOOTSTRAP, Scores, Trust, score, trust
from genre_tagger.models.predicting import predict_files
from genre_tagger.models.predictor import Predictor, TrackPrediction
from genre_tagger.pipeline import cache as cache_module
from genre_tagger.pipeline.analysis import SILENT_NOTE
from genre_tagger.segments import DEFAULT_MAX_SEGMENTS

OnStart = Callable[[str, int], None]  # (model name, files to predict)
OnFile = Callable[[str, "str | None", bool], None]  # (path, error or None, served from cache)


@dataclass
class EvaluateOptions:
    """The ``evaluate`` command's settings."""

    max_segments: int | None = DEFAULT_MAX_SEGMENTS
    jobs: int = 1
    adjust_priors: bool = False
    vote: str = "majority"  # or "soft", as scan --vote
    min_confidence: float | None = None  # as scan --min-confidence; None: the model's own
    n_bootstrap: int = N_BOOTSTRAP
    seed: int = BOOTSTRAP_SEED


@dataclass
class TrackOutcome:
    """One labelled track and what a model made of it.

    ``predicted`` is the scan's vote with its ``vote_share`` and ``top`` classes;
    ``confidence`` the model's calibrated probability that it is right and ``uncertain``
    why the scan would not tag it (``None``: it would), both as ``scan`` decides them;
    ``mean_proba`` the mean segment probability per class; ``adjusted`` the prediction
    after the prior shift (with ``--adjust-priors``).
    """

    path: str
    label: str
    line: int
    predicted: str
    confidence: float
    vote_share: float
    top: list
    uncertain: str | None = None
    mean_proba: dict[str, float] | None = None
    adjusted: str | None = None
    cached: bool = False


@dataclass
class ModelEvaluation:
    """One model on the collection.

    ``tracks`` are the scored tracks (labels within the model's classes, predicted);
    ``outside`` rows whose label the model cannot predict (``{"path", "label", "line",
    "raw_label"}`` plus what the model made of them: ``"predicted"``, ``"confidence"``,
    ``"uncertain"``) and ``failed`` files that could not be analysed (with ``"error"``),
    both left out of the scores. ``distribution`` counts the labels of ``tracks``, most
    frequent first; ``imbalance_ratio`` is its largest over its smallest count.
    ``scores`` and ``trust`` are ``None`` when no track could be scored.
    """

    model: str
    checksum: str
    classes: list[str]
    tracks: list[TrackOutcome]
    outside: list[dict]
    failed: list[dict]
    from_cache: int  # predictions read from the cache
    analysed: int  # files decoded and analysed
    from_features: int  # files predicted from the features the cache held (another model's analysis)
    distribution: dict[str, int]
    imbalance_ratio: float | None
    scores: Scores | None
    trust: Trust | None = None
    prior_shift: PriorShift | None = None

    @property
    def outside_counts(self) -> dict[str, int]:
        return counts(row["label"] for row in self.outside)


@dataclass
class Evaluation:
    """Everything ``evaluate`` found: the labels, the missing files, every model's scores."""

    labels_file: str
    n_labelled: int
    label_distribution: dict[str, int]
    skipped_rows: list[str]
    missing: list[dict]
    max_segments: int | None
    models: list[ModelEvaluation]

    @property
    def any_failed(self) -> bool:
        """True when a labelled file is missing or could not be analysed (exit status 1)."""
        return bool(self.missing) or any(m.failed for m in self.models)

    def to_dict(self) -> dict:
        """Plain JSON-ready data: ``asdict`` with each model's outside counts added."""
        data = asdict(self)
        for model, model_data in zip(self.models, data["models"]):
            model_data["outside_counts"] = model.outside_counts
        return data


def _row(track: LabelledTrack, **extra) -> dict:
    return {"path": str(track.path), "label": track.label, "line": track.line, **extra}


def split_missing(tracks: Sequence[LabelledTrack]) -> tuple[list[LabelledTrack], list[dict]]:
    """``(tracks whose file exists, rows of those that do not)``."""
    present, missing = [], []
    for track in tracks:
        if track.path.is_file():
            present.append(track)
        else:
            reason = "not a file" if track.path.exists() else "no such file"
            missing.append(_row(track, error=f"{track.path}: {reason}"))
    return present, missing


# ---------------------------------------------------------------- predictions


def predict_tracks(
    predictor: Predictor,
    tracks: Sequence[LabelledTrack],
    cache: cache_module.Cache,
    options: EvaluateOptions,
    on_file: OnFile | None = None,
) -> tuple[list[TrackOutcome], list[dict], int, int]:
    """Predictions of ``predictor`` for ``tracks`` (files that exist), assessed as ``scan``
    assesses them: ``(outcomes sorted by path, failures, number of files decoded, number
    predicted from cached features)``.

    Predictions come from :func:`genre_tagger.models.predicting.predict_files`, with the
    same cache as ``scan`` and with features cached too, so ``--model all`` decodes each
    file once per feature extractor. Failures are rows with a one-line ``error``; silent
    tracks are failures too (no genre to judge).
    """
    on_file = on_file or (lambda path, error, cached: None)
    by_path = {track.path: track for track in tracks}
    outcomes: list[TrackOutcome] = []
    failures: list[dict] = []
    decoded = from_features = 0

    predictions = predict_files(
        predictor, list(by_path), cache, max_segments=options.max_segments, jobs=options.jobs, cache_features=True,
    )
    for prediction in predictions:
        track = by_path[prediction.path]
        decoded += prediction.analysed
        error = prediction.error or (f"{prediction.path}: {SILENT_NOTE}" if prediction.prediction.silent else None)
        if error:
            failures.append(_row(track, error=" ".join(error.split())))
            on_file(str(track.path), failures[-1]["error"], False)
        else:
            outcomes.append(_outcome(predictor, track, prediction.prediction, options, cached=prediction.cached))
            on_file(str(track.path), None, prediction.cached)
            from_features += not (prediction.cached or prediction.analysed)
    outcomes.sort(key=lambda outcome: outcome.path)
    failures.sort(key=lambda row: row["path"])
    return outcomes, failures, decoded, from_features


def _outcome(predictor: Predictor, track: LabelledTrack, prediction: TrackPrediction, options: EvaluateOptions,
             cached: bool) -> TrackOutcome:
    decision = prediction.decide(options.vote)
    assessment = prediction.assess(predictor, decision, options.min_confidence)
    return TrackOutcome(
        path=str(track.path),
        label=track.label,
        line=track.line,
        predicted=decision.genre,
        confidence=round(assessment.confidence, 4),
        vote_share=round(decision.confidence, 4),
        top=[list(item) for item in decision.top],
        uncertain=assessment.reason,
        mean_proba=prediction.mean_proba,
        cached=cached,
    )


# ---------------------------------------------------------------- prior shift


def _prior_shift(predictor: Predictor, tracks: list[TrackOutcome], options: EvaluateOptions) -> PriorShift:
    """Apply :func:`~genre_tagger.evaluation.priors.shift_priors` to ``tracks`` (sets
    ``adjusted`` on each) and score them."""
    classes = [str(c) for c in predictor.classes]
    train, notes = training_prior(predictor)
    collection = collection_prior([t.label for t in tracks], classes)
    proba = np.array([[t.mean_proba.get(c, 0.0) for c in classes] for t in tracks], dtype=float)
    adjusted = shift_priors(proba, train, collection)
    for track, row in zip(tracks, adjusted):
        track.adjusted = classes[int(np.argmax(row))]  # ties: the first class in the model's order
    return PriorShift(
        training_prior=dict(zip(classes, train.round(6).tolist())),
        collection_prior=dict(zip(classes, collection.round(6).tolist())),
        scores=score([t.label for t in tracks], [t.adjusted for t in tracks], classes, options.n_bootstrap, options.seed),
        changed=sum(t.adjusted != t.predicted for t in tracks),
        notes=notes,
    )


# ---------------------------------------------------------------- the whole evaluation


def evaluate_model(
    predictor: Predictor,
    tracks: Sequence[LabelledTrack],
    cache: cache_module.Cache,
    options: EvaluateOptions,
    on_start: OnStart | None = None,
    on_file: OnFile | None = None,
) -> ModelEvaluation:
    """Score ``predictor`` on ``tracks`` (files that exist; see :func:`split_missing`)."""
    classes = [str(c) for c in predictor.classes]
    if on_start:
        on_start(predictor.name, len(tracks))
    predicted, failed, analysed, from_features = predict_tracks(predictor, tracks, cache, options, on_file)
    outcomes = [t for t in predicted if t.label in classes]
    raw = {str(t.path): t.raw_label for t in tracks}
    outside = [{"path": t.path, "label": t.label, "line": t.line, "raw_label": raw[t.path], "predicted": t.predicted,
                "confidence": t.confidence, "uncertain": t.uncertain} for t in predicted if t.label not in classes]
    outside += [_row(t, raw_label=t.raw_label) for t in tracks if t.label not in classes
                and str(t.path) in {row["path"] for row in failed}]
    outside.sort(key=lambda row: row["path"])
    distribution = counts(t.label for t in outcomes)
    result = ModelEvaluation(
        model=predictor.name,
        checksum=predictor.checksum,
        classes=classes,
        tracks=outcomes,
        outside=outside,
        failed=failed,
        from_cache=sum(t.cached for t in outcomes),
        analysed=analysed,
        from_features=from_features,
        distribution=distribution,
        imbalance_ratio=max(distribution.values()) / min(distribution.values()) if distribution else None,
        scores=None,
    )
    if outcomes:
        result.scores = score([t.label for t in outcomes], [t.predicted for t in outcomes], classes,
                              options.n_bootstrap, options.seed)
        result.trust = trust(
            [t.confidence for t in outcomes], [t.predicted == t.label for t in outcomes],
            [t.uncertain is None for t in outcomes], [row["uncertain"] is None for row in outside if "predicted" in row],
        )
        if options.adjust_priors:
            result.prior_shift = _prior_shift(predictor, outcomes, options)
    return result


def evaluate(
    labels: Labels,
    predictors: Sequence[Predictor],
    cache: cache_module.Cache,
    options: EvaluateOptions | None = None,
    on_start: OnStart | None = None,
    on_file: OnFile | None = None,
) -> Evaluation:
    """Score every predictor on the labelled collection; missing files are listed, not fatal."""
    options = options or EvaluateOptions()
    present, missing = split_missing(labels.tracks)
    return Evaluation(
        labels_file=str(labels.source),
        n_labelled=len(labels.tracks),
        label_distribution=labels.distribution(),
        skipped_rows=list(labels.skipped),
        missing=missing,
        max_segments=options.max_segments,
        models=[evaluate_model(p, present, cache, options, on_start, on_file) for p in predictors],
    )
