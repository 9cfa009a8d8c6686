"""``retrain``: train every model from a folder of labelled clips and report honest scores.

The pipeline, in the order :func:`retrain` runs it::

    clips (<genre>/<clip>.<ext>; or a user's tagged library, or a labels CSV: their own
    genres, their tracks kept together by album) -> features of every segment (of a
    user's tracks: the segments scan analyses, so a scanned library decodes nothing),
    clean and degraded copies
    (other music of --cross-labels -> its features)
        -> per model: grouped CV (with the other music, in and out of its folds),
           robustness, artist split, leaky split, fit on all, its assessor (calibrated
           confidence, novelty, thresholds) -> bundle, ablation of its levers
        -> nested grouped CV of the default model
        -> ensemble of the models (weights by grouped CV)
        -> metrics.json and the model card (README.md)

Progress goes through a :class:`Progress`, so the command line shows it and tests can
ignore it; :func:`retrain` returns what was made (:class:`RetrainResult`).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from genre_tagger.hookspecs import FeatureExtractor, GenreModel, ModelSpec
from genre_tagger.models import bundle as bundle_module
from genre_tagger.models import ensemble as ensemble_module
from genre_tagger.models.catalogue import available, best_model, choose_default, default_models_dir, selection_score
from genre_tagger.pipeline.cache import Cache
from genre_tagger.plugins import Registry
from genre_tagger.evaluation.labels import LabelsError
from genre_tagger.training import ablation, ensemble_weights, modelcard, nested
from genre_tagger.training.assess import fit_assessor
from genre_tagger.training import MIN_TRACKS
from genre_tagger.segments import DEFAULT_MAX_SEGMENTS
from genre_tagger.training.clips import Clip, find_clips, labelled_clips, read_split_dir, tagged_clips
from genre_tagger.training.crossval import N_FOLDS, CrossSet, TrainedModel, clip_folds, train_and_score
from genre_tagger.training.dataset import Dataset, build_dataset, drop_duplicate_rows, stack
from genre_tagger.training.degrade import DEGRADATIONS


class RetrainError(Exception):
    """The training data cannot be used (no clips, one genre, split lists that name none
    of them); the message is one line."""


#: the options that are on by default for a GTZAN-style folder, off for a user's own tracks
LEVERS = ("ensemble", "augment", "robustness", "ablation", "nested")


@dataclass
class RetrainOptions:
    """The ``retrain`` command's settings. The clips come from one of ``data_dir`` (a
    GTZAN-style folder), ``from_tags`` (a user's library: each tagged track's first
    genre) or ``labels`` (a labels CSV in ``evaluate``'s format); of a user's own genres,
    those with fewer than ``min_tracks`` tracks are left out, and ``aliases`` (a file of
    ``name=label`` lines) adds synonyms.

    The five levers of :data:`LEVERS` left ``None`` are on for a GTZAN-style folder and
    off for a user's own tracks, so that those are read from the cache a scan filled."""

    data_dir: Path | None
    out_dir: Path
    split_dir: Path | None = None
    models: list[str] | None = None  # default: every registered model
    ensemble: bool | None = None
    augment: bool | None = None
    robustness: bool | None = None
    ablation: bool | None = None
    nested: bool | None = None
    jobs: int = 1
    cross_labels: Path | tuple[Path, ...] | None = None  # labels CSVs of other music, a source each
    cross_training: bool = True
    from_tags: Path | None = None
    labels: Path | None = None
    min_tracks: int = MIN_TRACKS
    aliases: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.cross_labels, (str, Path)):
            self.cross_labels = (Path(self.cross_labels),)
        self.cross_labels = tuple(self.cross_labels or ()) or None
        for lever in LEVERS:
            if getattr(self, lever) is None:
                setattr(self, lever, not self.own_genres)

    @property
    def own_genres(self) -> bool:
        """Whether the clips are a user's own tracks (their genres, their albums)."""
        return self.from_tags is not None or self.labels is not None

    @property
    def source(self) -> Path:
        return self.from_tags or self.labels or self.data_dir

    def command(self) -> str:
        """The ``genre-tagger retrain`` command line that makes the same models."""
        flag = "--from-tags" if self.from_tags else "--labels" if self.labels else "--data"
        words = ["genre-tagger", "retrain", flag, str(self.source), "--out", str(self.out_dir)]
        words += ["--min-tracks", str(self.min_tracks)] if self.own_genres and self.min_tracks != MIN_TRACKS else []
        words += ["--alias", str(self.aliases)] if self.aliases else []
        words += ["--split-dir", str(self.split_dir)] if self.split_dir else []
        for labels in self.cross_labels or ():
            words += ["--cross-labels", str(labels)]
        words += [] if self.cross_training or not self.cross_labels else ["--no-cross-training"]
        words += ["--models", ",".join(self.models)] if self.models else []
        for lever in LEVERS:  # those that differ from the source's default
            if getattr(self, lever) == self.own_genres:
                words.append(f"--{'' if getattr(self, lever) else 'no-'}{lever}")
        words += ["--jobs", str(self.jobs)] if self.jobs != 1 else []
        return shlex.join(words)


@dataclass
class Progress:
    """How :func:`retrain` reports progress: ``note`` a line, ``warn`` a file skipped,
    ``task(label, total)`` a counted task, returning the function to call as each item is
    done."""

    note: Callable[[str], None] = lambda line: None
    warn: Callable[[str], None] = lambda line: None
    task: Callable[[str, int], Callable[[], None]] = lambda label, total: (lambda: None)


@dataclass
class RetrainResult:
    """What :func:`retrain` made: a model card column per model (the ensemble last), the
    ablation rows, the clips that could not be used, and the files written."""

    clips: list[Clip]
    reports: list[modelcard.ModelReport]
    effects: list[ablation.LeverEffect]
    failures: list[str]
    default: str
    metrics_path: Path
    card_path: Path


@dataclass
class _Trained:
    """One model as trained: its spec, the unfitted estimator it was trained as, its fit
    and scores, the degraded copies it trained on, and its bundle."""

    spec: ModelSpec
    prototype: GenreModel
    trained: TrainedModel
    augmented: list[Dataset]
    bundle: bundle_module.Bundle
    report: modelcard.ModelReport
    effects: list[ablation.LeverEffect] = field(default_factory=list)
    cross: CrossSet | None = None


@dataclass
class TrainingClips:
    """What :func:`find_training_clips` found: the clips, the artist split (``None``
    without ``split_dir``), the tag value of each genre (a user's own spelling) and the
    genres left out, with why."""

    clips: list[Clip]
    splits: dict[str, set[str]] | None = None
    names: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


def find_training_clips(options: RetrainOptions, progress: Progress) -> TrainingClips:
    """The clips to train on; :class:`RetrainError` when they cannot be trained on."""
    if options.own_genres:
        return _own_clips(options, progress)
    clips = find_clips(options.data_dir, on_duplicate=lambda clip, first: progress.warn(
        f"skipped {clip.path}: same clip id as {first.path}"))
    if not clips:
        raise RetrainError(f"{options.data_dir}: no audio files found at <genre>/<file>")
    counts = Counter(clip.genre for clip in clips)
    if len(counts) < 2:
        raise RetrainError(f"{options.data_dir}: found only the genre(s) {sorted(counts)}; need at least two genre folders")
    progress.note(f"Found {len(clips)} clips of {len(counts)} genres in {options.data_dir}: "
                  + ", ".join(f"{genre} {counts[genre]}" for genre in sorted(counts)))
    splits = _artist_split(options.split_dir, clips) if options.split_dir else None
    return TrainingClips(clips, splits)


#: below this many tracks a genre's scores and predictions are shaky: said, not refused
FEW_TRACKS = 20


def _own_clips(options: RetrainOptions, progress: Progress) -> TrainingClips:
    """A user's tagged tracks (``from_tags``) or labelled ones (``labels``), genres of
    fewer than ``min_tracks`` tracks left out."""
    from genre_tagger.evaluation.labels import build_aliases, read_aliases

    try:
        aliases = read_aliases(options.aliases) if options.aliases else build_aliases()
        own = tagged_clips(options.from_tags, aliases) if options.from_tags else \
            labelled_clips(options.labels, aliases, albums=True)
    except (LabelsError, FileNotFoundError) as error:
        raise RetrainError(str(error)) from None
    for line in own.skipped:
        progress.warn(f"skipped {line}")
    counts = Counter(clip.genre for clip in own.clips)
    left_out = {own.names[g]: f"{n} track{'s' * (n != 1)}, fewer than --min-tracks {options.min_tracks}"
                for g, n in counts.items() if n < options.min_tracks}
    kept = {g for g, n in counts.items() if n >= options.min_tracks}
    clips = [clip for clip in own.clips if clip.genre in kept]
    progress.note(f"Found {len(own.clips)} tracks with a genre in {options.source} ({own.untagged} without one, "
                  f"left alone); training on {len(clips)} of {len(kept)} genres: "
                  + ", ".join(f"{own.names[g]} {counts[g]}" for g in sorted(kept, key=lambda g: -counts[g])))
    for genre, why in left_out.items():
        progress.warn(f"left out the genre {genre!r}: {why}")
    for genre in sorted(g for g in kept if counts[g] < FEW_TRACKS):
        progress.warn(f"{own.names[genre]!r} has only {counts[genre]} tracks: its scores and tags will be shaky")
    if len(kept) < 2:
        raise RetrainError(f"{options.source}: {len(kept)} genre(s) with at least {options.min_tracks} tracks; "
                           "need two (tag more tracks, or lower --min-tracks)")
    one_album = sorted(own.names[g] for g in kept if len({c.album for c in clips if c.genre == g}) < 2)
    if one_album:  # all its tracks in one fold: a model would be tested on a genre it never trained on
        progress.warn(f"the tracks of {', '.join(map(repr, one_album))} lie in one album (or folder): cross-validation "
                      "groups by track instead, so its scores may be of albums the model heard part of")
        clips = [dataclasses.replace(clip, album=None) for clip in clips]
    return TrainingClips(clips, None, {g: own.names[g] for g in sorted(kept)}, left_out)


def _artist_split(split_dir: Path, clips: list[Clip]) -> dict[str, set[str]]:
    """The split lists of ``split_dir``, checked to name clips on both sides."""
    try:
        splits = read_split_dir(split_dir)
    except (OSError, ValueError) as error:
        raise RetrainError(str(error)) from None
    ids = {clip.clip_id for clip in clips}
    training = len(ids & (splits["train"] | splits["valid"]))
    testing = len(ids & splits["test"])
    if not training or not testing:
        raise RetrainError(
            f"{split_dir}: the split lists name {training} of the {len(ids)} clips found for training (train/valid) "
            f"and {testing} for testing (test); the artist split needs both: leave out --split-dir"
        )
    return splits


def extract(clips: list[Clip], extractors: list[FeatureExtractor], cache: Cache, jobs: int,
            degradation: str | None, progress: Progress, max_segments: int | None = None) -> Dataset:
    """Every clip's features by every extractor (of a degraded copy with ``degradation``;
    at most ``max_segments`` per clip)."""
    label = "features" + (f" of {degradation} copies" if degradation else "")
    advance = progress.task(f"{label}: {', '.join(e.name for e in extractors)}", len(clips))
    cached = [0]

    def done(clip: Clip, result) -> None:
        if result is not None and result.error:
            progress.warn(f"skipped {result.error}")
        cached[0] += result is None
        advance()

    dataset = build_dataset(clips, extractors, cache, jobs, done, degradation, max_segments)
    progress.note(f"{label} of {len(clips)} files: {cached[0]} from the cache, {len(clips) - cached[0]} analysed")
    return dataset


def cross_set(options: RetrainOptions, extractors: list[FeatureExtractor], cache: Cache,
              training_rows: dict[str, int], progress: Progress) -> CrossSet | None:
    """The other music of ``options.cross_labels``, analysed, as a :class:`CrossSet`
    weighted against ``training_rows`` (per genre, see :meth:`CrossSet.of`); each labels
    file is a source of its own, left out in turn for the unseen-source figure."""
    if options.cross_labels is None:
        return None
    datasets, sources = [], []
    for path in options.cross_labels:
        try:
            labelled = labelled_clips(path)
        except LabelsError as error:
            raise RetrainError(str(error)) from None
        for line in labelled.skipped:
            progress.warn(f"skipped {line}")
        if not labelled.clips:
            raise RetrainError(f"{path}: no labelled file found")
        counts = Counter(clip.genre for clip in labelled.clips)
        progress.note(f"Other music: {len(labelled.clips)} clips in {path}: "
                      + ", ".join(f"{g} {n}{'' if g in training_rows else ' (not a training genre)'}"
                                for g, n in sorted(counts.items())))
        datasets.append(extract(labelled.clips, extractors, cache, options.jobs, None, progress))
        sources.append(np.full(len(datasets[-1].y), str(path)))
    return CrossSet.of(stack(datasets), training_rows, N_FOLDS, options.cross_training, np.concatenate(sources))


def train_model(spec: ModelSpec, clean: Dataset, copies: dict[str, Dataset], splits: dict[str, set[str]] | None,
                options: RetrainOptions, progress: Progress, cross: CrossSet | None = None,
                names: dict[str, str] | None = None) -> _Trained:
    """Score ``spec`` by every protocol, fit it on all clips, measure its assessor and save
    its bundle (with ``names``, the tag value of each genre, when a user's own)."""
    dataset = drop_duplicate_rows(clean.select(spec.feature_extractors))
    # the same segments as the clean rows kept, degraded
    model_copies = {name: copy.select(spec.feature_extractors) for name, copy in copies.items()}
    model_copies = {name: copy.subset(np.isin(copy.keys(), dataset.keys())) for name, copy in model_copies.items()}
    augmented = list(model_copies.values()) if options.augment else []
    progress.note(f"Training and scoring {spec.name} on {len(dataset.y)} segments"
                  + (f" (+ {sum(len(a.y) for a in augmented)} degraded copies)" if augmented else "") + " ...")
    prototype = spec.make() if not options.own_genres else _with_shipped_choices(spec)
    model_cross = cross.select(spec.feature_extractors) if cross is not None else None
    # the original study's leaky split means something only beside its own figures, on GTZAN
    trained = train_and_score(prototype, dataset, splits, augmented, model_copies if options.robustness else None,
                              model_cross, leaky=not options.own_genres)
    assessor, detector, trained.metrics["assessment"] = fit_assessor(trained, model_cross)
    summary = dict(dataset.summary(), data=str(options.source), grouped_by="clip" if dataset.albums is None else "album",
                   split_dir=str(options.split_dir) if options.split_dir else None,
                   augmentation=list(model_copies) if options.augment else [],
                   cross_labels=", ".join(map(str, options.cross_labels)) if options.cross_labels else None,
                   cross_clips_trained_on=_cross_summary(model_cross))
    if names:
        summary["genre_names"] = names  # scan tags these values: the owner's own spelling
    saved = bundle_module.Bundle(spec.name, dataset.versions, trained.model, training=summary, metrics=trained.metrics,
                                 assessor=assessor, novelty_model=detector)
    bundle_module.save(saved, options.out_dir / spec.name)
    features = " + ".join(f"`{name}` v{version}" for name, version in dataset.versions.items())
    report = modelcard.ModelReport(spec.name, f"on {features}: {modelcard.rounded(trained.model.save().params)}",
                                   trained.metrics, summary, set(dataset.versions))
    progress.note(f"  saved {options.out_dir / spec.name} ({trained.seconds:.0f} s)")
    effects = ablation.ablate(spec.name, prototype, trained, augmented, model_cross,
                              on_lever=lambda lever: progress.note(f"  ablation of {spec.name}: without {lever} ...")
                              ) if options.ablation else []
    return _Trained(spec, prototype, trained, augmented, saved, report, effects, model_cross)


def _cross_summary(cross: CrossSet | None) -> dict | None:
    """How many clips of other music per genre a model trained on, and how often each counts."""
    if cross is None or not cross.train:
        return None
    rows = cross.dataset.subset(cross.known)
    clips = dict(zip(rows.groups, rows.y))
    return {"clips_per_genre": {str(g): n for g, n in sorted(Counter(clips.values()).items())}, "weight": cross.weight}


def default_of(models: dict[str, _Trained]) -> str:
    """The model ``scan`` would default to among ``models`` (the ensemble aside: its
    weights are chosen by a CV of their own)."""
    return choose_default({n: selection_score(m.trained.metrics) for n, m in models.items()},
                          {n: set(m.trained.dataset.versions) for n, m in models.items()})


def nest(model: _Trained, progress: Progress) -> None:
    """Score ``model`` by nested grouped CV (its levers chosen inside each outer fold);
    recorded in its metrics and bundle."""
    progress.note(f"Nested grouped CV of {model.spec.name} (levers chosen inside each outer fold) ...")
    extra = model.cross.training_rows() if model.cross is not None else []
    outer_folds = len(np.unique(clip_folds(model.trained.dataset)))
    on_fold = progress.task(f"nested CV of {model.spec.name} (outer folds)", outer_folds)
    model.trained.metrics["nested_cv"] = nested.nested_cv(model.prototype, model.trained.dataset, model.augmented,
                                                          extra=extra, on_fold=on_fold)
    bundle_module.save(model.bundle, model.bundle.path)


def build_ensemble(models: dict[str, _Trained], splits: dict[str, set[str]] | None, options: RetrainOptions,
                   progress: Progress, cross: CrossSet | None = None) -> tuple[modelcard.ModelReport, list[ablation.LeverEffect]]:
    """Weigh the models into an ensemble, save its bundle; its card column and ablation row."""
    trained = {name: model.trained for name, model in models.items()}
    weights, metrics = ensemble_weights.train(trained, splits, cross)
    # a member weighted 0 is left out: scans would compute its features for nothing
    members = [name for name, weight in zip(trained, weights) if weight > 0]
    weights = weights[weights > 0]
    first = next(iter(models.values()))
    ensemble_module.save(options.out_dir / ensemble_module.NAME, members, weights, first.trained.cv.classes, metrics,
                         first.report.training)
    report = modelcard.ModelReport(
        ensemble_module.NAME, "mean of " + ", ".join(f"{w:.1f} x {m}" for m, w in zip(members, weights)) + " per segment",
        metrics, first.report.training, set().union(*(models[m].report.extractors for m in members)),
    )
    progress.note(f"  saved {options.out_dir / ensemble_module.NAME} (weights {dict(zip(members, weights.round(2).tolist()))})")
    effects = [ablation.ensemble_effect(metrics["grouped_cv"], trained)] if options.ablation else []
    return report, effects


def _with_shipped_choices(spec: ModelSpec):
    """The estimator of ``spec`` with the hyper-parameters the shipped bundle of the same
    model chose by grouped CV on GTZAN (a logistic regression's C): a user's few dozen
    tracks a genre choose them no better, and choosing them by an inner CV in every fold
    would take a large library minutes instead of seconds."""
    prototype = spec.make()
    folder = default_models_dir() / spec.name
    try:
        chosen = bundle_module.read_metadata(folder).get("params", {})
    except bundle_module.BundleError:
        return prototype
    settable = prototype.get_params()
    return prototype.set_params(**{k: v for k, v in chosen.items() if k in settable and not isinstance(v, (dict, list))})


def _scans_default(registry: Registry) -> list[str] | None:
    """The model ``scan`` uses by default (of the shipped ones, or $GENRE_TAGGER_MODELS'),
    or when that is an ensemble its most weighted member: one registered model, so that
    a user's genres train in seconds; ``None`` when there is none."""
    folder = default_models_dir()
    name = best_model(folder) if available(folder) else None
    if name is not None and name not in registry.models:
        try:
            meta = bundle_module.read_metadata(folder / name)
        except bundle_module.BundleError:
            return None
        members, weights = meta.get("members") or [], meta.get("weights") or []
        name = max(zip(weights, members))[1] if len(members) == len(weights) and members else None
    return [name] if name in registry.models else None


def retrain(options: RetrainOptions, registry: Registry, cache: Cache, progress: Progress | None = None) -> RetrainResult:
    """Train and score every model of ``options`` (see the module docstring).

    Raises :class:`RetrainError` for training data that cannot be used and
    :class:`~genre_tagger.plugins.PluginError` for a model that is not registered.
    """
    progress = progress or Progress()
    names = options.models or (_scans_default(registry) if options.own_genres else None) or registry.default_models()
    specs = [registry.model(name.strip()) for name in names]
    found = find_training_clips(options, progress)
    clips, splits = found.clips, found.splits
    extractors = [registry.feature_extractor(name) for name in dict.fromkeys(n for s in specs for n in s.feature_extractors)]
    # a user's tracks: the segments scan analyses, so that a scanned library is read from the cache
    max_segments = DEFAULT_MAX_SEGMENTS if options.own_genres else None
    clean = extract(clips, extractors, cache, options.jobs, None, progress, max_segments)
    degradations = list(DEGRADATIONS) if options.augment or options.robustness else []
    copies = {name: extract(clips, extractors, cache, options.jobs, name, progress, max_segments) for name in degradations}
    # a training set's rows per genre, degraded copies included
    training_rows = {str(g): int(n) * (1 + (len(copies) if options.augment else 0))
                     for g, n in zip(*np.unique(clean.y, return_counts=True))}
    cross = cross_set(options, extractors, cache, training_rows, progress)

    options.out_dir.mkdir(parents=True, exist_ok=True)
    models = {spec.name: train_model(spec, clean, copies, splits, options, progress, cross, found.names)
              for spec in specs}
    if options.nested:
        nest(models[default_of(models)], progress)
    reports = [model.report for model in models.values()]
    effects = [effect for model in models.values() for effect in model.effects]
    if options.ensemble and len(models) >= 2:
        report, ensemble_effects = build_ensemble(models, splits, options, progress, cross)
        reports.append(report)
        effects += ensemble_effects
    failures = sorted(set(clean.failures))
    return _write_outputs(options, found, reports, effects, failures)


def _description(options: RetrainOptions, found: TrainingClips, reports: list[modelcard.ModelReport]) -> str:
    """What the model card says the models were trained on (and, for a user's own genres,
    what they stand on)."""
    counts = Counter(clip.genre for clip in found.clips)
    if not options.own_genres:
        return f"`{options.data_dir}`: {len(found.clips)} clips found, genres: {', '.join(sorted(counts))}."
    how = "the first genre tag of each track" if options.from_tags else "the labels of the CSV"
    text = (f"`{options.source}`: {len(found.clips)} tracks in their owner's genres, from {how} (names normalised "
            f"as `evaluate` does), tracks of one album (album tag, else folder) kept in one fold: "
            + ", ".join(f"{found.names[g]} {counts[g]}" for g in sorted(counts, key=lambda g: -counts[g])) + ".")
    if found.left_out:
        text += " Left out: " + "; ".join(f"{genre} ({why})" for genre, why in found.left_out.items()) + "."
    for report in reports:
        text += (f"\n\n`{report.name}` stands on what genre-tagger's shipped `{report.name}` learned from GTZAN and "
                 f"other music: its features ({', '.join(f'`{e}`' for e in sorted(report.extractors))}; see the "
                 "plugins in docs/architecture.md) and the hyper-parameters its grouped CV chose; only the classifier over those "
                 f"features learns these genres. It is {report.description}.")
    return text


def _write_outputs(options: RetrainOptions, found: TrainingClips, reports: list[modelcard.ModelReport],
                   effects: list[ablation.LeverEffect], failures: list[str]) -> RetrainResult:
    """``metrics.json`` and the model card ``README.md`` in ``options.out_dir``."""
    metrics = {r.name: {"metrics": r.metrics, "training": r.training} for r in reports}
    metrics["ablation"] = [effect.as_dict() for effect in effects]
    metrics["failures"] = failures
    metrics_path, card_path = options.out_dir / "metrics.json", options.out_dir / "README.md"
    metrics_path.write_text(json.dumps(metrics, indent=2))
    card_path.write_text(modelcard.render(reports, options.command(), _description(options, found, reports), effects))
    default = choose_default({r.name: selection_score(r.metrics) for r in reports}, {r.name: r.extractors for r in reports})
    return RetrainResult(found.clips, reports, effects, failures, default, metrics_path, card_path)

