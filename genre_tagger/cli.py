"""The ``genre-tagger`` command: a thin shell over the library.

Exit codes: 0 success, 1 when some files failed, 2 for usage errors.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from genre_tagger import __version__, bundle, modelcard
from genre_tagger import ensemble as ensemble_module
from genre_tagger.cache import Cache, CacheError, default_path
from genre_tagger.dataset import find_clips, read_split_dir
from genre_tagger.plugins import PluginError, registry
from genre_tagger.voting import VOTES


if TYPE_CHECKING:
    from genre_tagger import training

# soft_wrap: a one-line error stays one line in logs, whatever the terminal width
console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


def _open_cache(path: str | None, enabled: bool) -> Cache:
    try:
        return Cache((Path(path) if path else default_path()) if enabled else None)
    except CacheError as error:
        _fail(escape(str(error)))


def cache_options(function):
    function = click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")(function)
    return click.option(
        "--cache", "cache_path", type=click.Path(dir_okay=False), default=None,
        help="Cache database (default: $GENRE_TAGGER_CACHE or ~/.cache/genre-tagger/cache.sqlite).",
    )(function)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genre-tagger")
def main() -> None:
    """Listen to a music library and tag every track with its genre."""
    # A file name that is not valid UTF-8 is shown with backslash escapes, not a crash.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


@main.command("plugins")
def plugins_command() -> None:
    """List the registered feature extractors and models."""
    try:
        rows = registry().describe()
    except PluginError as error:
        _fail(str(error))
    table = Table(title="Registered plugins")
    for column in ("name", "version", "kind", "consumes", "from"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.name, row.version, row.kind, row.consumes, row.source)
    Console().print(table)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@main.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with clips at <genre>/<clip>.<ext> (anywhere below it).")
@click.option("--out", "out_dir", default="models", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where to write one bundle folder per model, metrics.json and README.md (the model card).")
@click.option("--split-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder with {train,valid,test}_filtered.txt: also score on this artist-filtered split.")
@click.option("--models", "model_names", default=None, help="Comma-separated models to train (default: all registered).")
@click.option("--ensemble/--no-ensemble", default=True, show_default=True,
              help="Also build an ensemble of the trained models (weights chosen by grouped CV).")
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Add band-limited (16 kHz) and low-bitrate mp3 copies of the training clips to every training set "
                   "(inside the training folds only).")
@click.option("--robustness/--no-robustness", default=True, show_default=True,
              help="Also score the grouped CV with the test folds band-limited and re-encoded as low-bitrate mp3.")
@click.option("--ablation/--no-ablation", default=True, show_default=True,
              help="Measure each lever's effect (features, augmentation, class weights, soft vote, ensemble) by "
                   "grouped CV without it; printed and recorded in the model card. Roughly doubles the training time.")
@click.option("--nested/--no-nested", default=True, show_default=True,
              help="Also score the default model by nested grouped CV: its levers (features, augmentation, class "
                   "weights, vote) chosen by an inner CV in each outer fold's training clips. Up to 8 inner grouped CVs per outer fold: several minutes on GTZAN.")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1), help="Worker processes for feature extraction.")
@cache_options
def retrain(data_dir: Path, out_dir: Path, split_dir: Path | None, model_names: str | None, ensemble: bool,
            augment: bool, robustness: bool, ablation: bool, nested: bool, jobs: int, cache_path: str | None,
            no_cache: bool) -> None:
    """Train the models from a GTZAN-style folder and report honest scores."""
    from genre_tagger import ablation as ablation_module
    from genre_tagger import nested as nested_module
    from genre_tagger import training
    from genre_tagger.degrade import DEGRADATIONS

    plugins = registry()
    names = model_names.split(",") if model_names else sorted(plugins.models)
    try:
        model_classes = [plugins.model(name.strip()) for name in names]
    except PluginError as error:
        _fail(str(error))
    clips = find_clips(
        data_dir,
        on_duplicate=lambda clip, first: console.print(f"[yellow]skipped[/] {clip.path}: same clip id as {first.path}", highlight=False),
    )
    if not clips:
        _fail(f"{data_dir}: no audio files found at <genre>/<file>")
    genres = sorted({clip.genre for clip in clips})
    if len(genres) < 2:
        _fail(f"{data_dir}: found only the genre(s) {genres}; need at least two genre folders")
    splits = read_split_dir(split_dir) if split_dir else None
    counts = Counter(clip.genre for clip in clips)
    console.print(f"Found {len(clips)} clips of {len(genres)} genres in {data_dir}: "
                  + ", ".join(f"{genre} {counts[genre]}" for genre in genres), highlight=False)

    extractor_names = list(dict.fromkeys(name for m in model_classes for name in m.feature_extractors))
    extractors = [plugins.feature_extractor(name) for name in extractor_names]
    degradations = list(DEGRADATIONS) if augment or robustness else []
    with _open_cache(cache_path, not no_cache) as cache:
        clean = _clip_features(clips, extractors, cache, jobs, None)
        copies = {name: _clip_features(clips, extractors, cache, jobs, name) for name in degradations}

    out_dir.mkdir(parents=True, exist_ok=True)
    reports: list[modelcard.ModelReport] = []
    trained_models: dict[str, training.TrainedModel] = {}
    augmented_of: dict[str, list[training.Dataset]] = {}
    saved: dict[str, bundle.Bundle] = {}
    effects: list[ablation_module.LeverEffect] = []
    for model_class in model_classes:
        dataset = training.drop_duplicate_rows(clean.select(model_class.feature_extractors))
        # the same segments as the clean rows kept, degraded
        model_copies = {name: copy.select(model_class.feature_extractors) for name, copy in copies.items()}
        model_copies = {name: copy.subset(np.isin(copy.keys(), dataset.keys())) for name, copy in model_copies.items()}
        augmented = list(model_copies.values()) if augment else []
        console.print(f"Training and scoring [bold]{model_class.name}[/] on {len(dataset.y)} segments"
                      + (f" (+ {sum(len(a.y) for a in augmented)} degraded copies)" if augmented else "") + " ...")
        trained = training.train_and_score(model_class, dataset, splits, augmented, model_copies if robustness else None)
        summary = dict(dataset.summary(), data=str(data_dir), split_dir=str(split_dir) if split_dir else None,
                       augmentation=list(model_copies) if augment else [])
        trained_bundle = bundle.Bundle(trained.model, dataset.versions, training=summary, metrics=trained.metrics)
        bundle.save(trained_bundle, out_dir / model_class.name)
        trained_models[model_class.name] = trained
        augmented_of[model_class.name] = augmented
        saved[model_class.name] = trained_bundle
        features = " + ".join(f"`{name}` v{version}" for name, version in dataset.versions.items())
        reports.append(modelcard.ModelReport(
            model_class.name, f"on {features}: {modelcard.rounded(trained.model.save().params)}", trained.metrics, summary,
            set(dataset.versions),
        ))
        console.print(f"  saved {out_dir / model_class.name} ({trained.seconds:.0f} s)")
        if ablation:
            effects += ablation_module.ablate(model_class, trained, augmented)
    if nested:
        # the model scan would default to among these (the ensemble aside: its weights are
        # chosen by a CV of their own), scored with its levers chosen inside each fold
        name = bundle.choose_default({n: bundle.selection_score(t.metrics) for n, t in trained_models.items()},
                                     {n: set(t.dataset.versions) for n, t in trained_models.items()})
        console.print(f"Nested grouped CV of [bold]{name}[/] (levers chosen inside each outer fold) ...")
        trained = trained_models[name]
        trained.metrics["nested_cv"] = nested_module.nested_cv(plugins.model(name), trained.dataset, augmented_of[name])
        bundle.save(saved[name], out_dir / name)  # its metrics now hold the nested score
    if ensemble and len(trained_models) >= 2:
        weights, ensemble_metrics = ensemble_module.train(trained_models, splits)
        # a member weighted 0 is left out: scans would compute its features for nothing
        members = [name for name, weight in zip(trained_models, weights) if weight > 0]
        weights = weights[weights > 0]
        first = next(iter(trained_models.values()))
        ensemble_module.save(out_dir / ensemble_module.NAME, members, weights, first.cv.classes, ensemble_metrics, reports[0].training)
        reports.append(modelcard.ModelReport(
            ensemble_module.NAME, "mean of " + ", ".join(f"{w:.1f} x {m}" for m, w in zip(members, weights)) + " per segment",
            ensemble_metrics, reports[0].training,
            set().union(*(report.extractors for report in reports if report.name in members)),
        ))
        console.print(f"  saved {out_dir / ensemble_module.NAME} (weights {dict(zip(members, weights.round(2).tolist()))})")
        if ablation:
            effects.append(ablation_module.ensemble_effect(ensemble_metrics["grouped_cv"], trained_models))

    failures = sorted(set(clean.failures))
    metrics = {r.name: {"metrics": r.metrics, "training": r.training} for r in reports}
    metrics["ablation"] = [effect.as_dict() for effect in effects]
    metrics["failures"] = failures
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    command = ["genre-tagger", "retrain", "--data", str(data_dir), "--out", str(out_dir)]
    command += ["--split-dir", str(split_dir)] if split_dir else []
    command += ["--models", model_names] if model_names else []
    command += [] if ensemble else ["--no-ensemble"]
    command += [] if augment else ["--no-augment"]
    command += [] if robustness else ["--no-robustness"]
    command += [] if ablation else ["--no-ablation"]
    command += [] if nested else ["--no-nested"]
    command += ["--jobs", str(jobs)] if jobs != 1 else []
    description = f"`{data_dir}`: {len(clips)} clips found, genres: {', '.join(genres)}."
    (out_dir / "README.md").write_text(modelcard.render(reports, shlex.join(command), description, effects))
    Console().print(_scores_table(reports))
    if effects:
        Console().print(_ablation_table(effects))
    console.print(f"Wrote {out_dir / 'metrics.json'} and the model card {out_dir / 'README.md'}")
    if failures:
        console.print(f"[yellow]{len(failures)} clip(s) could not be used:[/]")
        for failure in failures:
            console.print(f"  {failure}", highlight=False)


def _clip_features(clips, extractors, cache, jobs: int, degradation: str | None) -> training.Dataset:
    """Every clip's features by every extractor, with a progress bar."""
    from genre_tagger import training

    label = "features" + (f" of {degradation} copies" if degradation else "")
    with _progress() as progress:
        task = progress.add_task(f"{label}: {', '.join(e.name for e in extractors)}", total=len(clips))

        def advance(clip, result):
            if result is not None and result.error:
                progress.console.print(f"[yellow]skipped[/] {result.error}", highlight=False)
            progress.advance(task)

        return training.build_dataset(clips, extractors, cache, jobs, advance, degradation)


def _ablation_table(effects) -> Table:
    table = Table(title="Ablation: grouped-CV track balanced accuracy with and without each lever")
    for column in ("model", "lever", "with", "without", "effect ± spread over folds"):
        table.add_column(column, justify="left" if column in ("model", "lever") else "right")
    for effect in effects:
        table.add_row(effect.model, effect.lever, f"{effect.with_lever:.3f}", f"{effect.without_lever:.3f}",
                      f"{effect.delta:+.3f} ± {effect.delta_std:.3f}")
    return table


def _scores_table(reports: list[modelcard.ModelReport]) -> Table:
    table = Table(title="Scores (grouped CV keeps every clip in one fold; the leaky split does not)")
    table.add_column("score")
    for report in reports:
        table.add_column(report.name, justify="right")
    for protocol, key, label in modelcard.HEADLINE:
        table.add_row(label, *[modelcard.score_cell(r.metrics, protocol, key) for r in reports])
    for genre in sorted(reports[0].metrics["grouped_cv"]["track_recall"]):
        table.add_row(f"recall {genre}", *[f"{r.metrics['grouped_cv']['track_recall'].get(genre, 0):.2f}" for r in reports])
    return table


def _load_bundle(model_name: str | None, models_dir: Path | None):
    """The named bundle, or the one with the best grouped-CV track balanced accuracy."""
    models_dir = models_dir or bundle.default_models_dir()
    names = bundle.available(models_dir)
    if not names:
        _fail(f"{models_dir}: no trained models found (run 'genre-tagger retrain' or pass --models-dir)")
    if model_name is None:
        model_name = bundle.best_model(models_dir)
    elif model_name not in names:
        _fail(f"no model {model_name!r} in {models_dir} (available: {', '.join(names)})")
    try:
        return bundle.load(models_dir / model_name, registry())
    except (bundle.BundleError, PluginError) as error:
        _fail(str(error))


def model_options(function):
    function = click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                            help="Folder of model bundles (default: $GENRE_TAGGER_MODELS or the shipped pretrained models).")(function)
    return click.option("--model", "model_name", default=None,
                        help="Model to use (default: the best by grouped-CV balanced track accuracy).")(function)


def _parse_genre_names(pairs: tuple[str, ...]) -> dict[str, str]:
    from genre_tagger.tags import DEFAULT_GENRE_NAMES

    names = dict(DEFAULT_GENRE_NAMES)
    for pair in pairs:
        label, sep, display = pair.partition("=")
        if not sep or not label.strip() or not display.strip():
            raise click.BadParameter(f"{pair!r}: expected LABEL=Name, e.g. hiphop='Hip Hop'", param_hint="--genre-name")
        names[label.strip().lower()] = display.strip()
    return names


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_options
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a CSV report, one row per file.")
@click.option("--write", is_flag=True, help="Write genre tags. Without it nothing in the library changes (dry run).")
@click.option("--policy", type=click.Choice(["keep", "overwrite", "append"]), default="keep", show_default=True,
              help="What to do with a file that already has a genre.")
@click.option("--id3v23", is_flag=True, help="Write ID3v2.3 (multiple genres joined by --id3-join) instead of ID3v2.4.")
@click.option("--id3-join", default="; ", show_default=True, help="Separator of multiple genres in ID3v2.3.")
@click.option("--genre-name", "genre_names", multiple=True, metavar="LABEL=Name",
              help="Tag value for a class, e.g. --genre-name hiphop='Hip Hop' (repeatable).")
@click.option("--min-confidence", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Below this confidence (the winning vote share) a track is reported as unknown and not tagged.")
@click.option("--max-segments", default=20, show_default=True, type=click.IntRange(0),
              help="Analyse at most N 3-second segments spread evenly over each track (0: all). "
                   "20 segments (60 s) cover intro, body and outro of a typical track at a quarter of the cost.")
@click.option("--vote", type=click.Choice(VOTES), default="majority", show_default=True,
              help="How segments decide a track: the majority of their top classes, or soft (the class of "
                   "highest mean probability; confidence is then that probability).")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@click.option("--cluster", "cluster", metavar="ADDRESS", default=None,
              help="Analyse on the Dask cluster whose scheduler is at ADDRESS (tcp://HOST:8786), or 'local' for a "
                   "local Dask cluster of --jobs processes; prediction, cache, report and tags stay here. "
                   "Needs pip install 'genre-tagger[dask]'.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where --write records every change for 'genre-tagger undo' (default: a new file in ~/.local/share/genre-tagger/journals).")
@click.option("--quiet", "-q", is_flag=True, help="Only the summary, not every change.")
@cache_options
def scan(paths, model_name, models_dir, report_path, write, policy, id3v23, id3_join, genre_names, min_confidence,
         max_segments, vote, jobs, cluster, journal_path, quiet, cache_path, no_cache) -> None:
    """Predict the genre of every track under PATHS and (with --write) tag it."""
    from genre_tagger import journal as journal_module
    from genre_tagger.library import walk
    from genre_tagger.report import write_csv
    from genre_tagger.scan import ScanOptions, Scanner

    options = ScanOptions(
        max_segments=max_segments or None, min_confidence=min_confidence, write=write, policy=policy,
        id3_version=3 if id3v23 else 4, id3_join=id3_join, genre_names=_parse_genre_names(genre_names), jobs=jobs,
        vote=vote, cluster=cluster,
    )
    model = _load_bundle(model_name, models_dir)
    walk_errors: list[str] = []
    files = list(walk(paths, walk_errors.append))
    for error in walk_errors:
        console.print(f"[yellow]skipped[/] {error}", highlight=False)
    console.print(f"{len(files)} audio files, model [bold]{model.name}[/]" + ("" if write else " (dry run: nothing will be written)"))

    journal = None
    if write:
        journal_path = journal_path or journal_module.default_path()
        journal = journal_module.Journal(journal_path)
    hours = [0.0]
    with _open_cache(cache_path, not no_cache) as cache, _progress() as progress:
        task = progress.add_task("scanning", total=len(files))

        def on_result(result, cached):
            hours[0] += (result.duration_s or 0) / 3600
            progress.update(task, advance=1, description=f"scanning ({hours[0]:.2f} h of audio)")
            if result.status == "failed":
                progress.console.print(f"[red]failed[/] {result.error}", highlight=False)
            elif not quiet and result.status in ("tagged", "would tag"):
                verb = "tagged" if result.status == "tagged" else "would tag"
                shown = options.genre_names.get(result.genre, result.genre)
                progress.console.print(f"{verb} {result.path}: {shown} ({result.confidence:.0%})", highlight=False)

        try:
            summary = Scanner(model, options, cache, journal, on_result).scan(files, walk_errors)
        except bundle.BundleError as error:  # its model is made on first use: see bundle.load
            _fail(str(error))
        finally:
            if journal is not None:
                journal.close()
    if report_path:
        write_csv(summary.results, report_path)
        console.print(f"Wrote the report {report_path}")
    Console().print(_scan_summary_table(summary, options))
    console.print(
        f"{len(summary.results)} files in {summary.seconds:.1f} s: {summary.from_cache} from cache, "
        f"{len(summary.results) - summary.from_cache} analysed"
    )
    if journal is not None:
        console.print(f"Journal of changes: {journal_path} (undo with: genre-tagger undo {journal_path} --write)")
    elif any(r.status == "would tag" for r in summary.results):
        console.print("Dry run: nothing was written. Add --write to tag the files.")
    sys.exit(1 if summary.failed or summary.walk_errors else 0)


def _scan_summary_table(summary, options) -> Table:
    table = Table(title="Scan summary")
    table.add_column("genre / status")
    table.add_column("tracks", justify="right")
    for genre, n in summary.genre_counts().most_common():
        table.add_row(options.genre_names.get(genre, genre), str(n))
    table.add_section()
    for status, n in summary.status_counts().most_common():
        table.add_row(status, str(n))
    if summary.walk_errors:
        table.add_row("folders/files skipped", str(len(summary.walk_errors)))
    for failed in summary.failed:
        table.add_row(f"[red]failed[/] {failed.error}", "")
    return table


@main.command()
@click.argument("journal_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--write", is_flag=True, help="Restore the old genres. Without it nothing changes (dry run).")
def undo(journal_path: Path, write: bool) -> None:
    """Put back the genres a 'scan --write' replaced, as recorded in JOURNAL_PATH."""
    from genre_tagger.journal import undo as undo_journal

    results = undo_journal(journal_path, dry_run=not write)
    table = Table(title=f"Undo {journal_path}" + ("" if write else " (dry run: nothing written)"))
    for column in ("file", "status", "genres now -> restored"):
        table.add_column(column)
    for result in results:
        change = f"{'; '.join(result.new) or '(none)'} -> {'; '.join(result.old) or '(none)'}"
        style = {"error": "red", "changed": "yellow"}.get(result.status, "")
        table.add_row(result.path, f"[{style}]{result.status}[/]" if style else result.status,
                      change if result.status in ("restored", "would restore") else result.message)
    Console().print(table)
    if not write and any(r.status == "would restore" for r in results):
        console.print("Dry run: add --write to restore these genres.")
    sys.exit(1 if any(r.status == "error" for r in results) else 0)


@main.command()
@click.option("--labels", "labels_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV of your labels: a path column (path/file/filename/location) and a genre column "
                   "(genre/label/class/tag); comma, semicolon or tab separated.")
@click.option("--model", "model_name", default=None,
              help="Model to evaluate, or 'all' for every available model side by side "
                   "(default: the best by grouped-CV balanced track accuracy).")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of model bundles (default: $GENRE_TAGGER_MODELS or the shipped pretrained models).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Resolve relative paths of the labels file against this folder (default: the labels file's folder).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write everything (scores, confusion matrices, every track's prediction) to this JSON file.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the confusion matrices as a PNG image (needs matplotlib: pip install 'genre-tagger[plot]').")
@click.option("--adjust-priors", is_flag=True,
              help="Also score after re-weighting each track's probabilities by collection prior / training prior "
                   "(the collection prior is taken from your labels, so these scores are optimistic).")
@click.option("--alias", "alias_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Extra genre synonyms: 'name=label' lines or a two-column CSV (e.g. rap=hiphop).")
@click.option("--max-segments", default=20, show_default=True, type=click.IntRange(0),
              help="Analyse at most N 3-second segments per track (0: all); the same as scan's, so that "
                   "scan results are reused from the cache.")
@click.option("--vote", type=click.Choice(VOTES), default="majority", show_default=True,
              help="How segments decide a track, as scan --vote.")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@cache_options
def evaluate(labels_path, model_name, models_dir, root, json_path, plot_path, adjust_priors, alias_path, max_segments, vote,
             jobs, cache_path, no_cache) -> None:
    """Score the models on your own labelled collection (classes may be imbalanced)."""

    from genre_tagger import evaluation, labels

    if plot_path is not None:
        try:
            evaluation.require_matplotlib()
        except evaluation.PlotUnavailable as error:
            _fail(escape(str(error)))
    try:
        aliases = labels.read_aliases(alias_path) if alias_path else labels.build_aliases()
        labelled = labels.read_labels(labels_path, root, aliases)
    except labels.LabelsError as error:
        _fail(escape(str(error)))
    models_dir = models_dir or bundle.default_models_dir()
    if model_name == "all":
        names = bundle.available(models_dir)
        if not names:
            _fail(f"{models_dir}: no trained models found (run 'genre-tagger retrain' or pass --models-dir)")
        bundles = [_load_bundle(name, models_dir) for name in names]
    else:
        bundles = [_load_bundle(model_name, models_dir)]

    console.print(
        f"{len(labelled.tracks)} labelled files in {escape(str(labels_path))} (columns {labelled.path_column!r} and "
        f"{labelled.genre_column!r}): " + ", ".join(f"{g} {n}" for g, n in labelled.distribution().items()),
        highlight=False,
    )
    for message in labelled.skipped:
        console.print(f"[yellow]skipped[/] {escape(message)}", highlight=False)

    options = evaluation.EvaluateOptions(
        max_segments=max_segments or None, jobs=jobs, adjust_priors=adjust_priors, vote=vote
    )
    with _open_cache(cache_path, not no_cache) as cache, _progress() as progress:
        tasks: dict[str, int] = {}

        def on_start(name: str, total: int) -> None:
            tasks[name] = progress.add_task(f"evaluating {name}", total=total)

        def on_file(path: str, error: str | None, cached: bool) -> None:
            progress.advance(list(tasks.values())[-1])
            if error:
                progress.console.print(f"[red]failed[/] {escape(error)}", highlight=False)

        try:
            result = evaluation.evaluate(labelled, bundles, cache, options, on_start, on_file)
        except bundle.BundleError as error:  # a model is made on first use: see bundle.load
            _fail(str(error))

    out = Console()
    out.print(_evaluation_summary_table(result))
    for model in result.models:
        if model.scores is None:
            continue
        out.print(_per_class_table(model))
        out.print(_confusion_table(model.model, model.scores))
        if model.prior_shift is not None:
            out.print(_confusion_table(f"{model.model}, priors adjusted", model.prior_shift.scores))
    _print_left_out(result)
    for model in result.models:
        console.print(f"{model.model}: {model.from_cache} from cache, {model.analysed} analysed", highlight=False)
    if json_path:
        json_path.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        console.print(f"Wrote {escape(str(json_path))}", highlight=False)
    if plot_path:
        try:
            evaluation.plot_confusions(result, plot_path)
            console.print(f"Wrote {escape(str(plot_path))}", highlight=False)
        except ValueError as error:
            console.print(f"[yellow]no plot:[/] {escape(str(error))}", highlight=False)
    sys.exit(1 if result.any_failed else 0)


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _evaluation_summary_table(result) -> Table:
    """One column per model: tracks, scores (also after the prior shift), what was left out."""
    table = Table(title="Evaluation on your labels (balanced accuracy: mean recall over your genres)")
    table.add_column("")
    for model in result.models:
        table.add_column(model.model, justify="right")

    def row(label: str, cell) -> None:
        table.add_row(label, *[cell(m) for m in result.models])

    def scores(cell):
        return lambda m: "–" if m.scores is None else cell(m.scores)

    def interval(s) -> str:
        low, high = s.balanced_accuracy_ci95
        return f"{s.balanced_accuracy:.2f} [{low:.2f}–{high:.2f}]"

    row("tracks scored", lambda m: str(len(m.tracks)))
    row("imbalance (largest/smallest genre)", lambda m: "–" if m.imbalance_ratio is None else f"{m.imbalance_ratio:.1f}")
    row("accuracy", scores(lambda s: f"{s.accuracy:.2f}"))
    row("balanced accuracy [95% CI]", scores(interval))
    row("macro-F1", scores(lambda s: f"{s.macro_f1:.2f}"))
    if any(m.prior_shift for m in result.models):
        table.add_section()

        def shifted(cell):
            return lambda m: "–" if m.prior_shift is None else cell(m.prior_shift)

        row("priors adjusted: accuracy", shifted(lambda p: f"{p.scores.accuracy:.2f}"))
        row("priors adjusted: balanced accuracy", shifted(lambda p: interval(p.scores)))
        row("priors adjusted: macro-F1", shifted(lambda p: f"{p.scores.macro_f1:.2f}"))
        row("priors adjusted: predictions changed", shifted(lambda p: str(p.changed)))
    table.add_section()
    row("labels outside the model's genres", lambda m: str(len(m.outside)))
    row("failed (not analysable)", lambda m: f"[red]{len(m.failed)}[/]" if m.failed else "0")
    table.add_row("missing files", *[f"[red]{len(result.missing)}[/]" if result.missing else "0"] * len(result.models))
    return table


def _per_class_table(model) -> Table:
    """Precision, recall, F1 and support per genre (and recall after the prior shift)."""
    table = Table(title=f"{model.model}: per genre")
    for column in ("genre", "tracks", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "genre" else "right")
    shifted = model.prior_shift.scores.per_class if model.prior_shift else None
    if shifted is not None:
        table.add_column("recall, priors adjusted", justify="right")
    for genre, row in model.scores.per_class.items():
        cells = [genre, str(row["support"]), _score(row["precision"]), _score(row["recall"]), _score(row["f1"])]
        if shifted is not None:
            cells.append(_score(shifted.get(genre, {}).get("recall")))
        table.add_row(*cells)
    return table


def _confusion_table(title: str, scores) -> Table:
    """Rows true genres, columns predicted; diagonal green, big mistakes red, small ones yellow."""
    table = Table(title=f"{title}: confusion matrix (rows: your label, columns: predicted)")
    table.add_column("true \\ predicted", style="bold")
    for genre in scores.confusion_labels:
        table.add_column(genre, justify="right")
    table.add_column("recall", justify="right")
    for i, (genre, counts) in enumerate(zip(scores.confusion_labels, scores.confusion)):
        total = sum(counts)
        cells = []
        for j, count in enumerate(counts):
            share = count / total if total else 0.0
            if count == 0:
                cells.append("[dim]·[/]")
            elif i == j:
                cells.append(f"[bold green]{count}[/]")
            else:
                cells.append(f"[bold red]{count}[/]" if share >= 0.2 else f"[yellow]{count}[/]")
        cells.append(_score(scores.per_class[genre]["recall"]))
        table.add_row(genre, *cells)
    return table


def _print_left_out(result, limit: int = 20) -> None:
    """Missing files, failed files and labels outside each model's genres (the last capped at ``limit``)."""
    from rich.markup import escape

    for row in result.missing:
        console.print(f"[red]missing[/] {escape(row['path'])} (line {row['line']})", highlight=False)
    for model in result.models:
        for row in model.failed:
            console.print(f"[red]failed[/] ({model.model}) {escape(row['error'])}", highlight=False)
    shown: set[tuple] = set()
    for model in result.models:
        key = tuple(row["path"] for row in model.outside)
        if not key or key in shown:
            continue
        shown.add(key)
        models = ", ".join(m.model for m in result.models if tuple(r["path"] for r in m.outside) == key)
        counts = ", ".join(f"{label} {n}" for label, n in model.outside_counts.items())
        console.print(f"[yellow]{len(key)} file(s) labelled outside the genres of {models}[/] (not scored): {counts}",
                      highlight=False)
        for row in model.outside[:limit]:
            console.print(f"  {escape(row['path'])}: {escape(repr(row['raw_label']))}", highlight=False)
        if len(model.outside) > limit:
            console.print(f"  ... and {len(model.outside) - limit} more (all in --json)")
