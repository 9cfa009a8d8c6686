"""``retrain``: train every model from a folder of labelled clips and report honest scores.

The pipeline, in the order :func:`retrain` runs it::

    clips (<genre>/<clip>.<ext>) -> features of every segment, clean and degraded copies
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

import json
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from genre_tagger.hookspecs import FeatureExtractor, ModelSpec
from genre_tagger.models import bundle as bundle_module
from genre_tagger.models import ensemble as ensemble_module
from genre_tagger.models.catalogue import choose_default, selection_score
from genre_tagger.pipeline.cache import Cache
from genre_tagger.plugins import Registry
from genre_tagger.evaluation.labels import LabelsError
from genre_tagger.training import ablation, ensemble_weights, modelcard, nested
from genre_tagger.training.assess import fit_assessor
from genre_tagger.training.clips import Clip, find_clips, labelled_clips, read_split_dir
from genre_tagger.training.crossval import N_FOLDS, CrossSet, TrainedModel, clip_folds, train_and_score
from genre_tagger.training.dataset import Dataset, build_dataset, drop_duplicate_rows
from genre_tagger.training.degrade import DEGRADATIONS


class RetrainError(Exception):
    """The training data cannot be used (no clips, one genre, split lists that name none
    of them); the message is one line."""


@dataclass
class RetrainOptions:
    """The ``retrain`` command's settings."""

    data_dir: Path
    out_dir: Path
    split_dir: Path | None = None
    models: list[str] | None = None  # default: every registered model
    ensemble: bool = True
    augment: bool = True
    robustness: bool = True
    ablation: bool = True
    nested: bool = True
    jobs: int = 1
    cross_labels: Path | None = None  # a labels CSV of other music: scored, and trained on
    cross_training: bool = True

    def command(self) -> str:
        """The ``genre-tagger retrain`` command line that makes the same models."""
        words = ["genre-tagger", "retrain", "--data", str(self.data_dir), "--out", str(self.out_dir)]
        words += ["--split-dir", str(self.split_dir)] if self.split_dir else []
        words += ["--cross-labels", str(self.cross_labels)] if self.cross_labels else []
        words += [] if self.cross_training or not self.cross_labels else ["--no-cross-training"]
        words += ["--models", ",".join(self.models)] if self.models else []
        for flag in ("ensemble", "augment", "robustness", "ablation", "nested"):
            words += [] if getattr(self, flag) else [f"--no-{flag}"]
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
    """One model as trained: its spec, fit and scores, the degraded copies it trained on,
    and its bundle."""

    spec: ModelSpec
    trained: TrainedModel
    augmented: list[Dataset]
    bundle: bundle_module.Bundle
    report: modelcard.ModelReport
    effects: list[ablation.LeverEffect] = field(default_factory=list)
    cross: CrossSet | None = None


def find_training_clips(options: RetrainOptions, progress: Progress) -> tuple[list[Clip], dict[str, set[str]] | None]:
    """The clips under ``options.data_dir`` and the artist split (``None`` without
    ``split_dir``); :class:`RetrainError` when they cannot be trained on."""
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
    return clips, splits


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
            degradation: str | None, progress: Progress) -> Dataset:
    """Every clip's features by every extractor (of a degraded copy with ``degradation``)."""
    label = "features" + (f" of {degradation} copies" if degradation else "")
    advance = progress.task(f"{label}: {', '.join(e.name for e in extractors)}", len(clips))

    def done(clip: Clip, result) -> None:
        if result is not None and result.error:
            progress.warn(f"skipped {result.error}")
        advance()

    return build_dataset(clips, extractors, cache, jobs, done, degradation)


def cross_set(options: RetrainOptions, extractors: list[FeatureExtractor], cache: Cache, genres: list[str],
              training_rows: int, progress: Progress) -> CrossSet | None:
    """The other music of ``options.cross_labels``, analysed, as a :class:`CrossSet`."""
    if options.cross_labels is None:
        return None
    try:
        clips, skipped = labelled_clips(options.cross_labels)
    except LabelsError as error:
        raise RetrainError(str(error)) from None
    for line in skipped:
        progress.warn(f"skipped {line}")
    if not clips:
        raise RetrainError(f"{options.cross_labels}: no labelled file found")
    counts = Counter(clip.genre for clip in clips)
    progress.note(f"Other music: {len(clips)} clips in {options.cross_labels}: "
                  + ", ".join(f"{g} {n}{'' if g in genres else ' (not a training genre)'}" for g, n in sorted(counts.items())))
    dataset = extract(clips, extractors, cache, options.jobs, None, progress)
    return CrossSet.of(dataset, np.array(genres), training_rows, N_FOLDS, options.cross_training)


def train_model(spec: ModelSpec, clean: Dataset, copies: dict[str, Dataset], splits: dict[str, set[str]] | None,
                options: RetrainOptions, progress: Progress, cross: CrossSet | None = None) -> _Trained:
    """Score ``spec`` by every protocol, fit it on all clips, measure its assessor and save its bundle."""
    dataset = drop_duplicate_rows(clean.select(spec.feature_extractors))
    # the same segments as the clean rows kept, degraded
    model_copies = {name: copy.select(spec.feature_extractors) for name, copy in copies.items()}
    model_copies = {name: copy.subset(np.isin(copy.keys(), dataset.keys())) for name, copy in model_copies.items()}
    augmented = list(model_copies.values()) if options.augment else []
    progress.note(f"Training and scoring {spec.name} on {len(dataset.y)} segments"
                  + (f" (+ {sum(len(a.y) for a in augmented)} degraded copies)" if augmented else "") + " ...")
    prototype = spec.make()
    model_cross = cross.select(spec.feature_extractors) if cross is not None else None
    trained = train_and_score(prototype, dataset, splits, augmented, model_copies if options.robustness else None,
                              model_cross)
    assessor, detector, trained.metrics["assessment"] = fit_assessor(trained, model_cross)
    summary = dict(dataset.summary(), data=str(options.data_dir),
                   split_dir=str(options.split_dir) if options.split_dir else None,
                   augmentation=list(model_copies) if options.augment else [],
                   cross_labels=str(options.cross_labels) if options.cross_labels else None,
                   cross_clips_trained_on=_cross_summary(model_cross))
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
    return _Trained(spec, trained, augmented, saved, report, effects, model_cross)


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
    model.trained.metrics["nested_cv"] = nested.nested_cv(model.spec.make(), model.trained.dataset, model.augmented,
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


def retrain(options: RetrainOptions, registry: Registry, cache: Cache, progress: Progress | None = None) -> RetrainResult:
    """Train and score every model of ``options`` (see the module docstring).

    Raises :class:`RetrainError` for training data that cannot be used and
    :class:`~genre_tagger.plugins.PluginError` for a model that is not registered.
    """
    progress = progress or Progress()
    specs = [registry.model(name.strip()) for name in (options.models or sorted(registry.models))]
    clips, splits = find_training_clips(options, progress)
    extractors = [registry.feature_extractor(name) for name in dict.fromkeys(n for s in specs for n in s.feature_extractors)]
    clean = extract(clips, extractors, cache, options.jobs, None, progress)
    degradations = list(DEGRADATIONS) if options.augment or options.robustness else []
    copies = {name: extract(clips, extractors, cache, options.jobs, name, progress) for name in degradations}
    training_rows = len(clean.y) * (1 + (len(copies) if options.augment else 0))  # a training set's rows, copies included
    cross = cross_set(options, extractors, cache, sorted({clip.genre for clip in clips}), training_rows, progress)

    options.out_dir.mkdir(parents=True, exist_ok=True)
    models = {spec.name: train_model(spec, clean, copies, splits, options, progress, cross) for spec in specs}
    if options.nested:
        nest(models[default_of(models)], progress)
    reports = [model.report for model in models.values()]
    effects = [effect for model in models.values() for effect in model.effects]
    if options.ensemble and len(models) >= 2:
        report, ensemble_effects = build_ensemble(models, splits, options, progress, cross)
        reports.append(report)
        effects += ensemble_effects
    failures = sorted(set(clean.failures))
    return _write_outputs(options, clips, reports, effects, failures)


def _write_outputs(options: RetrainOptions, clips: list[Clip], reports: list[modelcard.ModelReport],
                   effects: list[ablation.LeverEffect], failures: list[str]) -> RetrainResult:
    """``metrics.json`` and the model card ``README.md`` in ``options.out_dir``."""
    metrics = {r.name: {"metrics": r.metrics, "training": r.training} for r in reports}
    metrics["ablation"] = [effect.as_dict() for effect in effects]
    metrics["failures"] = failures
    metrics_path, card_path = options.out_dir / "metrics.json", options.out_dir / "README.md"
    metrics_path.write_text(json.dumps(metrics, indent=2))
    genres = sorted({clip.genre for clip in clips})
    description = f"`{options.data_dir}`: {len(clips)} clips found, genres: {', '.join(genres)}."
    card_path.write_text(modelcard.render(reports, options.command(), description, effects))
    default = choose_default({r.name: selection_score(r.metrics) for r in reports}, {r.name: r.extractors for r in reports})
    return RetrainResult(clips, reports, effects, failures, default, metrics_path, card_path)

