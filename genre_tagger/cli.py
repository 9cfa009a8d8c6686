"""The ``genre-tagger`` command: a thin shell over the library.

Each command parses its options, makes one library call (or a few, in order) and prints
what comes back with :mod:`genre_tagger.display`. Exit codes: 0 success, 1 when some
files failed, 2 for usage errors. Each command imports the library it calls (numpy, the
models), so that ``genre-tagger --help`` stays quick.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from genre_tagger import __version__, display
from genre_tagger.config import ConfigError, read_config
from genre_tagger.display import console
from genre_tagger.defaults import DEFAULT_MAX_SEGMENTS, MIN_TRACKS, VOTES


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


def _open_cache(path: str | None, enabled: bool):
    from genre_tagger.pipeline.cache import Cache, CacheError, default_path

    try:
        return Cache((Path(path) if path else default_path()) if enabled else None)
    except CacheError as error:
        _fail(escape(str(error)))


def _choose_models(model_name: str | None, models_dir: Path | None) -> list:
    """The predictors asked for (see :func:`genre_tagger.models.catalogue.choose`), or a usage error."""
    from genre_tagger.models import catalogue
    from genre_tagger.models.bundle import BundleError
    from genre_tagger.plugins import registry

    try:
        return catalogue.choose(model_name, models_dir, registry())
    except BundleError as error:
        _fail(str(error))


min_confidence_option = click.option(
    "--min-confidence", default=None, type=click.FloatRange(0, 1),
    help="Below this confidence (the probability that the genre is right, as the model calibrated it) a track "
         "is reported uncertain and not tagged (default: the model's own threshold, in its model card).")


def cache_options(function):
    function = click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")(function)
    return click.option(
        "--cache", "cache_path", type=click.Path(dir_okay=False), default=None,
        help="Cache database (default: $GENRE_TAGGER_CACHE or ~/.cache/genre-tagger/cache.sqlite).",
    )(function)


def model_options(model_help: str):
    def decorate(function):
        function = click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=(
            "Folder of model bundles (default: $GENRE_TAGGER_MODELS or the shipped pretrained models)."))(function)
        return click.option("--model", "model_name", default=None, cls=_ModelOption, help=model_help)(function)
    return decorate


class _ModelOption(click.Option):
    """``--model``: its help names the models of the models folder, found only when shown."""

    def get_help_record(self, ctx: click.Context):
        from genre_tagger.models.catalogue import available, default_models_dir

        self.help = self.help.replace("{names}", ", ".join(available(default_models_dir())) or "none (run retrain)")
        return super().get_help_record(ctx)


class _Command(click.Group):
    """The command group; Ctrl-C outside a scan's own handling is one line and exit 130."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # click would say "Aborted!" and exit 1, the code for failed files
            console.print("[bold red]stopped:[/] Ctrl-C", highlight=False)
            sys.exit(130)


@click.group(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genre-tagger")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Listen to a music library and tag every track with its genre.

    Defaults come from the configuration file (see 'genre-tagger config'); options win over it.
    """
    # A file name that is not valid UTF-8 is shown with backslash escapes, not a crash.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    display.show_library_warnings()
    try:
        ctx.default_map = read_config(main).commands
    except ConfigError as error:
        _fail(escape(str(error)))


@main.command("config")
def config_command() -> None:
    """Show the configuration file and the defaults it sets."""
    try:
        config = read_config(main)
    except ConfigError as error:
        _fail(escape(str(error)))
    display.print_table(display.config_table(config))


@main.command("plugins")
def plugins_command() -> None:
    """List the registered feature extractors and models."""
    from genre_tagger.plugins import PluginError, registry

    try:
        rows = registry().describe()
    except PluginError as error:
        _fail(str(error))
    display.print_table(display.plugins_table(rows))


@main.command()
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder with clips at <genre>/<clip>.<ext> (anywhere below it).")
@click.option("--from-tags", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Instead of --data: learn your own genres from your library, each tagged track's first genre "
                   "(tracks of one album kept together); untagged files are left alone.")
@click.option("--labels", "labels_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Instead of --data: learn your own genres from a labels CSV (evaluate's format).")
@click.option("--min-tracks", default=None, type=click.IntRange(2), help=f"With --from-tags or --labels: leave "
              f"out genres with fewer tracks (they are reported).  [default: {MIN_TRACKS}]")
@click.option("--alias", "alias_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="With --from-tags or --labels: extra genre synonyms, 'name=label' lines (as evaluate --alias).")
@click.option("--out", "out_dir", default="models", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where to write one bundle folder per model, metrics.json and README.md (the model card).")
@click.option("--split-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder with {train,valid,test}_filtered.txt: also score on this artist-filtered split.")
@click.option("--cross-labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="A labels CSV (evaluate's format) of other music than --data, repeatable (a source each): every "
                   "model is scored on it by models that never saw its source (the unseen-source figure), and "
                   "(with --cross-training) trained on its clips of the genres --data has.")
@click.option("--cross-training/--no-cross-training", default=True, show_default=True,
              help="Train on the --cross-labels clips too (their score then comes from a grouped CV over them).")
@click.option("--models", "model_names", default=None,
              help="Comma-separated models to train (default: every registered model but those trained only when "
                   "named, such as the tree models; with --from-tags or --labels, scan's default model).")
@click.option("--ensemble/--no-ensemble", default=None,
              help="Also build an ensemble of the trained models (weights chosen by grouped CV). Default: on, off "
                   "with --from-tags or --labels, as the four below, so that your tracks are read from the cache.")
@click.option("--augment/--no-augment", default=None,
              help="Add degraded copies of the training clips (band-limited to 16 kHz, 32 kbit/s mp3, mastered loud) "
                   "to every training set (inside the training folds only).")
@click.option("--robustness/--no-robustness", default=None,
              help="Also score the grouped CV with the test folds degraded as --augment's copies are.")
@click.option("--ablation/--no-ablation", default=None,
              help="Measure each lever's effect (features, augmentation, class weights, soft vote, ensemble) by "
                   "grouped CV without it; printed and recorded in the model card. Roughly doubles the training time.")
@click.option("--nested/--no-nested", default=None,
              help="Also score the default model by nested grouped CV: its levers (features, augmentation, class "
                   "weights, vote) chosen by an inner CV in each outer fold's training clips. Up to 8 inner grouped CVs per outer fold: several minutes on GTZAN.")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1), help="Worker processes for feature extraction.")
@cache_options
def retrain(data_dir: Path | None, from_tags: Path | None, labels_path: Path | None, min_tracks: int | None,
            alias_path: Path | None, out_dir: Path, split_dir: Path | None, cross_labels: tuple[Path, ...],
            cross_training: bool, model_names: str | None, ensemble: bool | None, augment: bool | None,
            robustness: bool | None, ablation: bool | None, nested: bool | None, jobs: int, cache_path: str | None,
            no_cache: bool) -> None:
    """Train the models from a GTZAN-style folder (or your own genres) and report honest scores."""
    from genre_tagger.plugins import PluginError, registry
    from genre_tagger.training.retrain import Progress, RetrainError, RetrainOptions
    from genre_tagger.training.retrain import retrain as run_retrain

    if sum(source is not None for source in (data_dir, from_tags, labels_path)) != 1:
        raise click.UsageError("give one of --data, --from-tags and --labels")
    if data_dir is not None and (min_tracks is not None or alias_path is not None):
        raise click.UsageError("--min-tracks and --alias are for your own genres (--from-tags or --labels), not --data")
    if data_dir is None and split_dir is not None:
        raise click.UsageError("--split-dir names GTZAN's artist-filtered split: only with --data")
    options = RetrainOptions(data_dir, out_dir, split_dir, model_names.split(",") if model_names else None,
                             ensemble, augment, robustness, ablation, nested, jobs, cross_labels, cross_training,
                             from_tags, labels_path, MIN_TRACKS if min_tracks is None else min_tracks, alias_path)
    with _open_cache(cache_path, not no_cache) as cache, display.progress_bar() as bars:
        def task(label: str, total: int):
            task_id = bars.add_task(label, total=total)
            return lambda: bars.advance(task_id)

        def note(line: str) -> None:
            bars.console.print(escape(line), highlight=False)

        def warn(line: str) -> None:
            bars.console.print(f"[yellow]{escape(line)}[/]", highlight=False)

        try:
            result = run_retrain(options, registry(), cache, Progress(note, warn, task))
        except (RetrainError, PluginError) as error:
            _fail(escape(str(error)))
    display.print_retrain(result)


def _parse_genre_names(pairs: tuple[str, ...]) -> dict[str, str]:
    names = {}
    for pair in pairs:
        label, sep, shown = pair.partition("=")
        if not sep or not label.strip() or not shown.strip():
            raise click.BadParameter(f"{pair!r}: expected LABEL=Name, e.g. hiphop='Hip Hop'", param_hint="--genre-name")
        names[label.strip().lower()] = shown.strip()
    return names


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@model_options("Model to use: {names} (default: the best on GTZAN's grouped CV and on other music, see the "
               "model card).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a CSV report, one row per file (an existing file that is not a report is refused).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="Write JSON Lines, one object per file as it finishes ('-': standard output, and every other "
                   "line goes to standard error).")
@click.option("--force", is_flag=True, help="Let --report and --json overwrite an existing file that is not theirs.")
@click.option("--write", is_flag=True, help="Write genre tags. Without it nothing in the library changes (dry run).")
@click.option("--policy", type=click.Choice(["keep", "overwrite", "append"]), default="keep", show_default=True,
              help="What to do with a file that already has a genre.")
@click.option("--id3v23", is_flag=True, help="Write ID3v2.3 (multiple genres joined by --id3-join) instead of ID3v2.4.")
@click.option("--id3-join", default="; ", show_default=True, help="Separator of multiple genres in ID3v2.3.")
@click.option("--genre-name", "genre_names", multiple=True, metavar="LABEL=Name",
              help="Tag value for a class, e.g. --genre-name hiphop='Hip Hop' (repeatable).")
@click.option("--genres", "n_genres", default=1, show_default=True, type=click.IntRange(1, 5),
              help="Tag up to N genres (multi-valued tags): the winner's, then each whose own confidence passes "
                   "the threshold and whose mean probability is within --genre-margin of the winner's. Expect few: "
                   "the model must find both genres likely (the default did for 6 of 143 tagged Emotify clips).")
@click.option("--genre-margin", default=0.15, show_default=True, type=click.FloatRange(0, 1),
              help="How close (in mean probability) to the winner a further genre must be, with --genres.")
@min_confidence_option
@click.option("--max-segments", default=DEFAULT_MAX_SEGMENTS, show_default=True, type=click.IntRange(0),
              help="Analyse at most N 3-second segments spread evenly over each track (0: all). "
                   f"{DEFAULT_MAX_SEGMENTS} segments ({3 * DEFAULT_MAX_SEGMENTS} s) sample intro, body and outro of a "
                   "typical track at an eighth of the cost; the models' scores are of 10-segment votes.")
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
def scan(paths, model_name, models_dir, report_path, json_path, force, write, policy, id3v23, id3_join, genre_names,
         n_genres, genre_margin, min_confidence, max_segments, vote, jobs, cluster, journal_path, quiet, cache_path,
         no_cache) -> None:
    """Predict the genre of every track under PATHS and (with --write) tag it."""
    from genre_tagger.models.bundle import BundleError
    from genre_tagger.pipeline.cluster import ClusterError
    from genre_tagger.pipeline.stopping import StopRequest
    from genre_tagger.tagging import journal as journal_module
    from genre_tagger.tagging.library import walk
    from genre_tagger.pipeline.audio import AUDIO_EXTENSIONS
    from genre_tagger.tagging.report import JsonLinesOutput, ReportError, check_target, is_json_lines, write_csv
    from genre_tagger.tagging.scan import FAILED, ScanOptions, Scanner

    options = ScanOptions(
        max_segments=max_segments or None, min_confidence=min_confidence, write=write, policy=policy,
        id3_version=3 if id3v23 else 4, id3_join=id3_join, genre_names=_parse_genre_names(genre_names), jobs=jobs,
        vote=vote, genres=n_genres, genre_margin=genre_margin, cluster=cluster,
    )
    (predictor,) = _choose_models(model_name, models_dir)
    try:  # before any analysis: an output that cannot be written is a usage error now, not a traceback later
        journal_module.check_distinct(journal=journal_path, report=report_path, json=json_path)
        if report_path:
            check_target(report_path, force)
        if json_path not in (None, Path("-")):
            check_target(json_path, force, is_json_lines, "JSON Lines output")
        journal = journal_module.Journal(journal_path or journal_module.default_path(), roots=paths).open() if write else None
        json_out = JsonLinesOutput(json_path, sys.stdout if json_path == Path("-") else None) if json_path else None
    except (ReportError, journal_module.JournalError) as error:
        _fail(escape(str(error)))
    except OSError as error:
        _fail(escape(f"{json_path}: cannot be written ({error.strerror or error})"))
    walk_errors: list[str] = []
    files = list(walk(paths, walk_errors.append))
    for error in walk_errors:
        console.print(f"[yellow]skipped[/] {display.shown(error)}", highlight=False)
    if not files:
        _fail(escape(display.no_audio_files_line(paths, AUDIO_EXTENSIONS)))
    out = console if json_path == Path("-") else display.out  # standard output carries the JSON then
    out.print(f"{len(files)} audio files, model [bold]{predictor.name}[/]" + ("" if write else " (dry run: nothing will be written)"))
    hours = [0.0]
    with StopRequest() as stop, _open_cache(cache_path, not no_cache) as cache, display.progress_bar() as progress:
        task = progress.add_task("scanning", total=len(files))

        def on_result(result, cached):
            hours[0] += (result.duration_s or 0) / 3600
            progress.update(task, advance=1, description=f"scanning ({hours[0]:.2f} h of audio)")
            if json_out is not None and (error := json_out.write(result)):  # a full disk: said once, the scan goes on
                progress.console.print(f"[red]error:[/] {display.shown(error)}", highlight=False)
            if result.status == FAILED:
                progress.console.print(f"[red]failed[/] {display.shown(result.error)}", highlight=False)
            elif not quiet and (line := display.scan_line(result)):
                out.print(line, highlight=False)

        try:
            summary = Scanner(predictor, options, cache, journal, on_result).scan(files, walk_errors, stop)
        except BundleError as error:  # its model is made on first use: see models.bundle.load
            _fail(str(error))
        except ClusterError as error:
            _fail(escape(str(error)), error.exit_code)
        finally:
            if journal is not None:
                journal.close()
            if json_out is not None and (error := json_out.close()):
                console.print(f"[red]error:[/] {display.shown(error)}", highlight=False)
    report_error = None
    if report_path:
        try:
            write_csv(summary.results, report_path)
            out.print(f"Wrote the report {escape(str(report_path))}", highlight=False)
        except ReportError as error:  # a full disk: said, and the summary still printed
            console.print(f"[red]error:[/] {display.shown(report_error := str(error))}", highlight=False)
    display.print_scan_summary(summary, out, journal.path if journal is not None else None, journal_path is not None,
                               report_path)
    if summary.stopped:
        line = display.scan_stopped_line(summary, stop.name if stop() else None, stop.twice, not no_cache)
        _fail(escape(line), stop.exit_code if stop() else 1)
    sys.exit(1 if summary.failed or summary.walk_errors or report_error or (json_out and json_out.error) else 0)


@main.command()
@click.argument("journal_path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--last", type=click.IntRange(1), is_flag=False, flag_value=1, default=None, metavar="[N]",
              help="Undo the N (default 1) newest journals of the default folder not undone yet, newest first.")
@click.option("--since", metavar="JOURNAL", help="Undo every journal not undone yet from JOURNAL (a name --list "
                                                "shows) to the newest, newest first.")
@click.option("--list", "list_only", is_flag=True, help="List the journals of the default folder, newest first.")
@click.option("--write", is_flag=True, help="Restore the old genres. Without it nothing changes (dry run).")
@cache_options
def undo(journal_path: Path | None, last: int | None, since: str | None, list_only: bool, write: bool,
         cache_path: str | None, no_cache: bool) -> None:
    """Put back the genres a 'scan --write' replaced, as recorded in JOURNAL_PATH."""
    from genre_tagger.tagging import journal as journal_module

    if list_only:
        display.print_table(display.journals_table(journal_module.list_journals(), journal_module.journals_dir()))
        return
    if [journal_path, last, since].count(None) != 2:
        raise click.UsageError("name a journal, or pass --last [N] or --since JOURNAL (or --list)")
    with _open_cache(cache_path, not no_cache) as cache:
        try:
            paths = [journal_path] if journal_path else journal_module.journals_to_undo(last, since)
            undone = journal_module.undo_chain(paths, dry_run=not write, cache=cache)
        except journal_module.JournalError as error:
            _fail(escape(str(error)))
    display.print_undo(undone, write)
    sys.exit(1 if any(r.status == "error" for _, results in undone for r in results) else 0)


@main.command()
@click.option("--labels", "labels_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV of your labels: a path column (path/file/filename/location) and a genre column "
                   "(genre/label/class/tag); comma, semicolon or tab separated.")
@model_options("Model to evaluate: {names}, or 'all' for every one side by side (default: scan's).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Resolve relative paths of the labels file against this folder (default: the labels file's folder).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write everything (scores, confusion matrices, every track's prediction) to this JSON file.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG image of a model's confusion matrix, reliability diagram and risk-coverage curve; "
                   "with several models, one each: FILE-MODEL.png (needs matplotlib: pip install 'genre-tagger[plot]').")
@click.option("--adjust-priors", is_flag=True,
              help="Also score after re-weighting each track's probabilities by collection prior / training prior "
                   "(the collection prior is taken from your labels, so these scores are optimistic).")
@click.option("--alias", "alias_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Extra genre synonyms: 'name=label' lines or a two-column CSV (e.g. rap=hiphop).")
@click.option("--max-segments", default=DEFAULT_MAX_SEGMENTS, show_default=True, type=click.IntRange(0),
              help="Analyse at most N 3-second segments per track (0: all); the same as scan's, so that "
                   "scan results are reused from the cache.")
@click.option("--vote", type=click.Choice(VOTES), default="majority", show_default=True,
              help="How segments decide a track, as scan --vote.")
@min_confidence_option
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@cache_options
def evaluate(labels_path, model_name, models_dir, root, json_path, plot_path, adjust_priors, alias_path, max_segments, vote,
             min_confidence, jobs, cache_path, no_cache) -> None:
    """Score the models on your own labelled collection (classes may be imbalanced)."""
    from genre_tagger.models.bundle import BundleError
    from genre_tagger.evaluation import labels, plots
    from genre_tagger.evaluation.evaluate import EvaluateOptions, evaluate as run_evaluation

    if plot_path is not None:
        try:
            plots.require_matplotlib()
        except plots.PlotUnavailable as error:
            _fail(escape(str(error)))
    try:
        aliases = labels.read_aliases(alias_path) if alias_path else labels.build_aliases()
        labelled = labels.read_labels(labels_path, root, aliases)
    except labels.LabelsError as error:
        _fail(escape(str(error)))
    predictors = _choose_models(model_name, models_dir)
    console.print(
        f"{len(labelled.tracks)} labelled files in {escape(str(labels_path))} (columns {labelled.path_column!r} and "
        f"{labelled.genre_column!r}): " + ", ".join(f"{g} {n}" for g, n in labelled.distribution().items()),
        highlight=False,
    )
    for message in labelled.skipped:
        console.print(f"[yellow]skipped[/] {escape(message)}", highlight=False)

    options = EvaluateOptions(max_segments=max_segments or None, jobs=jobs, adjust_priors=adjust_priors, vote=vote,
                              min_confidence=min_confidence)
    with _open_cache(cache_path, not no_cache) as cache, display.progress_bar() as progress:
        tasks: dict[str, int] = {}

        def on_start(name: str, total: int) -> None:
            tasks[name] = progress.add_task(f"evaluating {name}", total=total)

        def on_file(path: str, error: str | None, cached: bool) -> None:
            progress.advance(list(tasks.values())[-1])
            if error:
                progress.console.print(f"[red]failed[/] {escape(error)}", highlight=False)

        try:
            result = run_evaluation(labelled, predictors, cache, options, on_start, on_file)
        except BundleError as error:  # a model is made on first use: see models.bundle.load
            _fail(str(error))

    display.print_evaluation(result)
    if json_path:
        json_path.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        console.print(f"Wrote {escape(str(json_path))}", highlight=False)
    if plot_path:
        try:
            for path in plots.plot_evaluation(result, plot_path):
                console.print(f"Wrote {escape(str(path))}", highlight=False)
        except ValueError as error:
            console.print(f"[yellow]no plot:[/] {escape(str(error))}", highlight=False)
    sys.exit(1 if result.any_failed else 0)
