"""How well do the models do on the user's own labelled collection?

Map of this module::

    labels.Labels ──► evaluate() ──► Evaluation (to_dict() for --json)
                        │
                        ├─ split_missing()      files that do not exist: listed, not fatal
                        └─ per model: evaluate_model() ──► ModelEvaluation
                             ├─ labels outside the model's classes: listed, not scored
                             ├─ predict_tracks()    predicting.predict_files: scan's cached
                             │                      result, else cached features, else
                             │                      analysis; cached exactly as `scan` does
                             ├─ score()             accuracy, balanced accuracy (+ bootstrap
                             │                      95 % interval), macro-F1, per class,
                             │                      confusion matrix
                             └─ with adjust_priors: shift_priors() then score() again

    plot_confusions()   a PNG of the confusion matrices (matplotlib, the ``plot`` extra)

Predictions are shared with ``genre-tagger scan`` through the cache: the same key (file
path, size, mtime), model key (``name@checksum``) and settings (``spread20`` for the
default 20 segments), so evaluating a scanned collection analyses nothing, and a scan
after an evaluation is served from the cache too. Features are cached as well (per
extractor, as ``retrain`` caches them), so ``--model all`` decodes each file once per
feature extractor. Ensembles get the features of every extractor their members read.
Silent, undecodable and missing files are listed and
left out of the scores, as are labels the model has no class for.

Scores follow the conventions of the model cards (:mod:`genre_tagger.metrics`):
balanced accuracy is the mean recall over the classes present in the labels, macro-F1
the mean F1 over those classes (a class never predicted has F1 0).
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from genre_tagger import cache as cache_module
from genre_tagger.analysis import SILENT_NOTE
from genre_tagger.bundle import Bundle
from genre_tagger.labels import LabelledTrack, Labels
from genre_tagger.predicting import needs_mean_proba, predict_files, voted
from genre_tagger.scan import DEFAULT_MAX_SEGMENTS

#: Resamples of the bootstrap interval of balanced accuracy, and its seed.
N_BOOTSTRAP = 1000
BOOTSTRAP_SEED = 0
#: Added to every class count of the collection before it becomes a prior, so that a
#: genre absent from the labels is made unlikely rather than impossible.
PRIOR_SMOOTHING = 1.0

OnStart = Callable[[str, int], None]  # (model name, files to predict)
OnFile = Callable[[str, "str | None", bool], None]  # (path, error or None, served from cache)


@dataclass
class EvaluateOptions:
    """The ``evaluate`` command's settings."""

    max_segments: int | None = DEFAULT_MAX_SEGMENTS
    jobs: int = 1
    adjust_priors: bool = False
    vote: str = "majority"  # or "soft", as scan --vote
    n_bootstrap: int = N_BOOTSTRAP
    seed: int = BOOTSTRAP_SEED


@dataclass
class TrackOutcome:
    """One labelled track and what a model made of it.

    ``predicted`` is the scan's majority vote with its ``confidence`` (vote share) and
    ``top`` classes; ``mean_proba`` the mean segment probability per class (``None``
    only for results cached before it was recorded); ``adjusted`` the prediction after
    the prior shift (with ``--adjust-priors``).
    """

    path: str
    label: str
    line: int
    predicted: str
    confidence: float
    top: list
    mean_proba: dict[str, float] | None = None
    adjusted: str | None = None
    cached: bool = False


@dataclass
class Scores:
    """Scores over ``n_tracks`` tracks.

    ``per_class`` maps each class that is labelled or predicted to ``precision``,
    ``recall``, ``f1`` (``None`` where undefined: precision of a class never predicted,
    recall and F1 of a class never labelled) and ``support``. ``confusion`` is
    ``[n_labels, n_labels]`` with rows the true labels and columns the predicted ones,
    both in the order of ``confusion_labels``.
    """

    n_tracks: int
    accuracy: float
    balanced_accuracy: float
    balanced_accuracy_ci95: tuple[float, float]
    macro_f1: float
    per_class: dict[str, dict]
    confusion_labels: list[str]
    confusion: list[list[int]]


@dataclass
class PriorShift:
    """Scores after re-weighting each track's mean probabilities by
    ``collection_prior / training_prior`` and taking the most probable class."""

    training_prior: dict[str, float]
    collection_prior: dict[str, float]
    scores: Scores
    changed: int  # tracks whose prediction the shift changed
    smoothing: float = PRIOR_SMOOTHING
    notes: list[str] = field(default_factory=list)


@dataclass
class ModelEvaluation:
    """One model on the collection.

    ``tracks`` are the scored tracks (labels within the model's classes, predicted);
    ``outside`` rows whose label the model cannot predict and ``failed`` files that
    could not be analysed, both left out of the scores (``{"path", "label", "line"}``
    plus ``"error"`` for failures). ``distribution`` counts the labels of ``tracks``,
    most frequent first; ``imbalance_ratio`` is its largest over its smallest count.
    ``scores`` is ``None`` when no track could be scored.
    """

    model: str
    checksum: str
    classes: list[str]
    tracks: list[TrackOutcome]
    outside: list[dict]
    failed: list[dict]
    from_cache: int  # predictions read from the cache
    analysed: int  # files decoded and analysed (the others' features came from the cache)
    distribution: dict[str, int]
    imbalance_ratio: float | None
    scores: Scores | None
    prior_shift: PriorShift | None = None

    @property
    def outside_counts(self) -> dict[str, int]:
        return _counts(row["label"] for row in self.outside)


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


def _counts(labels: Iterable[str]) -> dict[str, int]:
    """``{label: n}``, most frequent first, ties by name."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


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
    bundle: Bundle,
    tracks: Sequence[LabelledTrack],
    cache: cache_module.Cache,
    options: EvaluateOptions,
    on_file: OnFile | None = None,
) -> tuple[list[TrackOutcome], list[dict], int]:
    """Predictions of ``bundle`` for ``tracks`` (files that exist):
    ``(outcomes sorted by path, failures, number of files decoded)``.

    Predictions come from :func:`genre_tagger.predicting.predict_files`, with the same
    cache as ``scan`` (a result cached by ``scan`` is used as it is, unless the prior
    shift needs ``mean_proba`` and the entry predates it) and with features cached too,
    so ``--model all`` decodes each file once per feature extractor. Failures are rows
    with a one-line ``error``; silent tracks are failures too (no genre to judge).
    """
    on_file = on_file or (lambda path, error, cached: None)
    by_path = {track.path: track for track in tracks}
    outcomes: list[TrackOutcome] = []
    failures: list[dict] = []
    decoded = 0

    def stale(cached: dict) -> bool:
        return (options.adjust_priors or options.vote == "soft") and needs_mean_proba(cached)

    predictions = predict_files(
        bundle, list(by_path), cache, max_segments=options.max_segments, jobs=options.jobs,
        cache_features=True, refresh=stale,
    )
    for prediction in predictions:
        track = by_path[prediction.path]
        decoded += prediction.analysed
        error = prediction.error or (f"{prediction.path}: {SILENT_NOTE}" if prediction.silent else None)
        if error:
            failures.append(_row(track, error=" ".join(error.split())))
            on_file(str(track.path), failures[-1]["error"], False)
        else:
            outcomes.append(_outcome(track, voted(prediction.result, options.vote), cached=prediction.cached))
            on_file(str(track.path), None, prediction.cached)
    outcomes.sort(key=lambda outcome: outcome.path)
    failures.sort(key=lambda row: row["path"])
    return outcomes, failures, decoded


def _outcome(track: LabelledTrack, prediction: dict, cached: bool) -> TrackOutcome:
    return TrackOutcome(
        path=str(track.path),
        label=track.label,
        line=track.line,
        predicted=prediction["genre"],
        confidence=round(float(prediction["confidence"]), 4),
        top=[list(item) for item in prediction["top"]],
        mean_proba=prediction.get("mean_proba"),
        cached=cached,
    )


# ---------------------------------------------------------------- scores


def _recalls(true_index: np.ndarray, correct: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall per class of each row: ``true_index``/``correct`` ``[n_rows, n_tracks]`` ->
    ``[n_rows, n_classes]``, NaN for a class absent from a row."""
    n_rows = true_index.shape[0]
    cell = (np.arange(n_rows)[:, None] * n_classes + true_index).ravel()
    support = np.bincount(cell, minlength=n_rows * n_classes).reshape(n_rows, n_classes)
    hits = np.bincount(cell, weights=correct.ravel().astype(float), minlength=n_rows * n_classes).reshape(n_rows, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, hits / np.maximum(support, 1), np.nan)


def balanced_accuracy(true_index: np.ndarray, pred_index: np.ndarray, n_classes: int) -> float:
    """Mean recall over the classes present in ``true_index`` (class numbers ``[n_tracks]``)."""
    true_index, pred_index = np.asarray(true_index), np.asarray(pred_index)
    return float(np.nanmean(_recalls(true_index[None], (true_index == pred_index)[None], n_classes)[0]))


def bootstrap_balanced_accuracy(
    true_index: np.ndarray, pred_index: np.ndarray, n_classes: int,
    n_resamples: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED, chunk: int = 100,
) -> tuple[float, float]:
    """95 % percentile interval of balanced accuracy over tracks resampled with replacement.

    Each resample draws ``n_tracks`` tracks; a class missing from a resample is left out
    of its mean, as in :func:`balanced_accuracy`. Deterministic for a given ``seed``.
    """
    true_index, pred_index = np.asarray(true_index), np.asarray(pred_index)
    n = len(true_index)
    rng = np.random.default_rng(seed)
    correct = true_index == pred_index
    values = []
    for start in range(0, n_resamples, chunk):
        draw = rng.integers(0, n, size=(min(chunk, n_resamples - start), n))
        values.append(np.nanmean(_recalls(true_index[draw], correct[draw], n_classes), axis=1))
    low, high = np.percentile(np.concatenate(values), [2.5, 97.5])
    return float(low), float(high)


def score(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str],
    n_bootstrap: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED,
) -> Scores:
    """Scores of predicted against true labels, all within ``classes`` (the model's, in order).

    The confusion matrix and ``per_class`` cover the classes labelled or predicted at
    least once, in the order of ``classes``.
    """
    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    true_index = np.array([index[y] for y in y_true], dtype=int)
    pred_index = np.array([index[y] for y in y_pred], dtype=int)
    if len(true_index) == 0:
        raise ValueError("no tracks to score")
    used = sorted(set(true_index) | set(pred_index))
    matrix = np.zeros((len(used), len(used)), dtype=int)
    position = {c: i for i, c in enumerate(used)}
    np.add.at(matrix, ([position[t] for t in true_index], [position[p] for p in pred_index]), 1)
    per_class: dict[str, dict] = {}
    for i, c in enumerate(used):
        hits, support, predicted = int(matrix[i, i]), int(matrix[i].sum()), int(matrix[:, i].sum())
        precision = hits / predicted if predicted else None
        recall = hits / support if support else None
        if recall is None:
            f1 = None
        elif not hits:
            f1 = 0.0
        else:
            f1 = 2 * precision * recall / (precision + recall)
        per_class[classes[c]] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return Scores(
        n_tracks=len(true_index),
        accuracy=float(np.mean(true_index == pred_index)),
        balanced_accuracy=balanced_accuracy(true_index, pred_index, len(classes)),
        balanced_accuracy_ci95=bootstrap_balanced_accuracy(true_index, pred_index, len(classes), n_bootstrap, seed),
        macro_f1=float(np.mean([row["f1"] for row in per_class.values() if row["support"]])),
        per_class=per_class,
        confusion_labels=[classes[c] for c in used],
        confusion=matrix.tolist(),
    )


# ---------------------------------------------------------------- prior shift


def training_prior(bundle: Bundle) -> tuple[np.ndarray, list[str]]:
    """``(prior [n_classes], notes)``: each class's share of the training clips
    (``clips_per_genre`` of the bundle's training summary), uniform where unrecorded."""
    counts = bundle.training.get("clips_per_genre") or {}
    classes = [str(c) for c in bundle.classes]
    if not all(counts.get(c, 0) > 0 for c in classes):
        return np.full(len(classes), 1 / len(classes)), [
            f"{bundle.name}: the bundle does not record clips per genre for every class; assumed a uniform training prior"
        ]
    values = np.array([counts[c] for c in classes], dtype=float)
    return values / values.sum(), []


def collection_prior(labels: Sequence[str], classes: Sequence[str], smoothing: float = PRIOR_SMOOTHING) -> np.ndarray:
    """Each class's share of ``labels`` after adding ``smoothing`` to every count: ``[n_classes]``."""
    counts = np.array([sum(label == c for label in labels) for c in classes], dtype=float) + smoothing
    return counts / counts.sum()


def shift_priors(proba: np.ndarray, train_prior: np.ndarray, new_prior: np.ndarray) -> np.ndarray:
    """Posteriors under new class priors (Saerens, Latinne & Decaestecker 2002, eq. 2.4).

    ``p'(c|x) ∝ p(c|x) · new_prior[c] / train_prior[c]``, renormalised per row;
    ``proba`` is ``[n_tracks, n_classes]``. A row that would sum to 0 is kept as it was.
    """
    proba = np.asarray(proba, dtype=float)
    weighted = proba * (np.asarray(new_prior) / np.asarray(train_prior))[None, :]
    total = weighted.sum(axis=1, keepdims=True)
    return np.where(total > 0, weighted / np.where(total > 0, total, 1), proba)


def _prior_shift(bundle: Bundle, tracks: list[TrackOutcome], options: EvaluateOptions) -> PriorShift:
    """Apply :func:`shift_priors` to ``tracks`` (sets ``adjusted`` on each) and score them."""
    classes = [str(c) for c in bundle.classes]
    train, notes = training_prior(bundle)
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
    bundle: Bundle,
    tracks: Sequence[LabelledTrack],
    cache: cache_module.Cache,
    options: EvaluateOptions,
    on_start: OnStart | None = None,
    on_file: OnFile | None = None,
) -> ModelEvaluation:
    """Score ``bundle`` on ``tracks`` (files that exist; see :func:`split_missing`)."""
    classes = [str(c) for c in bundle.classes]
    inside = [t for t in tracks if t.label in classes]
    outside = [_row(t, raw_label=t.raw_label) for t in tracks if t.label not in classes]
    if on_start:
        on_start(bundle.name, len(inside))
    outcomes, failed, analysed = predict_tracks(bundle, inside, cache, options, on_file)
    distribution = _counts(t.label for t in outcomes)
    result = ModelEvaluation(
        model=bundle.name,
        checksum=bundle.checksum,
        classes=classes,
        tracks=outcomes,
        outside=outside,
        failed=failed,
        from_cache=sum(t.cached for t in outcomes),
        analysed=analysed,
        distribution=distribution,
        imbalance_ratio=max(distribution.values()) / min(distribution.values()) if distribution else None,
        scores=None,
    )
    if outcomes:
        result.scores = score([t.label for t in outcomes], [t.predicted for t in outcomes], classes,
                              options.n_bootstrap, options.seed)
        if options.adjust_priors:
            result.prior_shift = _prior_shift(bundle, outcomes, options)
    return result


def evaluate(
    labels: Labels,
    bundles: Sequence[Bundle],
    cache: cache_module.Cache,
    options: EvaluateOptions | None = None,
    on_start: OnStart | None = None,
    on_file: OnFile | None = None,
) -> Evaluation:
    """Score every bundle on the labelled collection; missing files are listed, not fatal."""
    options = options or EvaluateOptions()
    present, missing = split_missing(labels.tracks)
    return Evaluation(
        labels_file=str(labels.source),
        n_labelled=len(labels.tracks),
        label_distribution=labels.distribution(),
        skipped_rows=list(labels.skipped),
        missing=missing,
        max_segments=options.max_segments,
        models=[evaluate_model(b, present, cache, options, on_start, on_file) for b in bundles],
    )


# ---------------------------------------------------------------- plot


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (it is the optional ``plot`` extra)."""


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable` with install instructions when matplotlib is missing."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise PlotUnavailable(
            "--plot needs matplotlib, which is not installed: pip install 'genre-tagger[plot]' (or: pip install matplotlib)"
        ) from None


def plot_confusions(evaluation: Evaluation, path: str | Path) -> Path:
    """Write a PNG with one confusion matrix per model (a second row after the prior
    shift, when computed): cells coloured by the share of their row, labelled with counts."""
    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    models = [m for m in evaluation.models if m.scores is not None]
    if not models:
        raise ValueError("no model could be scored, nothing to plot")
    panels = [[(m.model, m.scores) for m in models]]
    if any(m.prior_shift for m in models):
        panels.append([(f"{m.model}, priors adjusted", m.prior_shift.scores if m.prior_shift else None) for m in models])
    size = max(4.5, 0.6 * max(len(m.scores.confusion_labels) for m in models) + 2.5)
    figure = Figure(figsize=(size * len(models), size * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), len(models), squeeze=False)
    for row, panel in enumerate(panels):
        for column, (title, scores) in enumerate(panel):
            axis = axes[row][column]
            if scores is None:
                axis.set_axis_off()
                continue
            matrix = np.array(scores.confusion, dtype=float)
            shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
            axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
            for (i, j), count in np.ndenumerate(matrix):
                if count:
                    axis.text(j, i, f"{int(count)}", ha="center", va="center",
                              color="white" if shares[i, j] > 0.5 else "black")
            ticks = range(len(scores.confusion_labels))
            axis.set_xticks(ticks, scores.confusion_labels, rotation=45, ha="right")
            axis.set_yticks(ticks, scores.confusion_labels)
            axis.set_xlabel("predicted")
            axis.set_ylabel("true")
            axis.set_title(f"{title}\nbalanced accuracy {scores.balanced_accuracy:.2f}, {scores.n_tracks} tracks")
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path
