"""What the command line prints: rich tables and progress bars of the library's results.

Nothing here computes anything; each function lays out a result object that a command's
library call returned.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:  # named in annotations only: a scan answered from the cache imports none of them
    from genre_tagger.config import Config
    from genre_tagger.evaluation.evaluate import Evaluation, ModelEvaluation
    from genre_tagger.evaluation.scores import Scores
    from genre_tagger.tagging.journal import JournalInfo, UndoResult
    from genre_tagger.tagging.scan import ScanSummary, TrackResult
    from genre_tagger.training.ablation import LeverEffect
    from genre_tagger.plugins import PluginInfo
    from genre_tagger.training.modelcard import ModelReport
    from genre_tagger.training.retrain import RetrainResult

# soft_wrap: a one-line error stays one line in logs, whatever the terminal width.
# ``console`` (standard error) carries progress, warnings and errors; ``out`` (standard
# output, looked up when printing, so tests can capture it) what a command found.
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
#: the width of tables printed to a pipe or a file (a terminal's own width limits them there)
PIPE_WIDTH = 200
#: control characters (C0, DEL, C1): a file name or a tag may hold them, and printed raw
#: a newline would forge a line of its own ("failed ...") and ESC send terminal escapes
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """``text`` (a file name, an error naming one) to print: control characters as
    Python writes them in a string (``\\n``, ``\\x1b``), rich markup escaped."""
    return escape(_CONTROL.sub(lambda match: repr(match.group())[1:-1], text))


def print_table(table: Table, to: Console | None = None) -> None:
    """Print ``table`` whole: cut to the terminal's width only on a terminal (rich lays
    anything else out at 80 columns, and ``print(width=...)`` cannot go past the console's)."""
    to = to or out
    if to.is_terminal:
        to.print(table)
        return
    width = to.width
    to.width = max(width, PIPE_WIDTH)
    try:
        to.print(table)
    finally:
        to.width = width


class _ConsoleHandler(logging.Handler):
    """The library's warnings (a file decoded only in part, a Dask worker of another
    version) as ``warning: ...`` lines on the console."""

    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"[yellow]warning:[/] {shown(record.getMessage())}", highlight=False)


def show_library_warnings() -> None:
    """Route the ``genre_tagger`` loggers' warnings to the console (once)."""
    logger = logging.getLogger("genre_tagger")
    if not any(isinstance(handler, _ConsoleHandler) for handler in logger.handlers):
        logger.addHandler(_ConsoleHandler(logging.WARNING))


def progress_bar() -> Progress:
    """A progress bar on standard error; lines printed to standard output while it runs
    land above it when both are the terminal, and in the file when output is redirected."""
    import sys

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        redirect_stdout=sys.stdout.isatty(),
    )


def plugins_table(rows: list[PluginInfo]) -> Table:
    """``genre-tagger plugins``: every registered extractor and model."""
    table = Table(title="Registered plugins")
    for column in ("name", "version", "kind", "consumes", "from"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.name, row.version, row.kind, row.consumes, row.source)
    return table


def config_table(config: Config) -> Table:
    state = "" if config.exists else " (no such file: the built-in defaults apply)"
    table = Table(title=f"Configuration {config.path}{state}")
    for column in ("command", "option", "default from the file"):
        table.add_column(column, overflow="fold")
    for command, option, value in config.settings:
        table.add_row(command, option, str(value))
    return table


# --------------------------------------------------------------------------- retrain


def ablation_table(effects: list[LeverEffect]) -> Table:
    table = Table(title="Ablation: track balanced accuracy with and without each lever")
    cross = any(effect.cross_delta is not None for effect in effects)
    columns = ["model", "lever", "with", "without", "effect ± spread over folds"] + (["other music: effect"] if cross else [])
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "lever") else "right")
    for effect in effects:
        cells = [effect.model, effect.lever, f"{effect.with_lever:.3f}", f"{effect.without_lever:.3f}",
                 f"{effect.delta:+.3f} ± {effect.delta_std:.3f}"]
        if cross:
            cells.append("–" if effect.cross_delta is None else
                         f"{effect.cross_with:.3f} vs {effect.cross_without:.3f}: {effect.cross_delta:+.3f}")
        table.add_row(*cells)
    return table


def scores_table(reports: list[ModelReport]) -> Table:
    from genre_tagger.training import modelcard

    table = Table(title="Scores (grouped CV keeps every clip in one fold; the leaky split does not)")
    table.add_column("score")
    for report in reports:
        table.add_column(report.name, justify="right")
    for label, cells in modelcard.score_rows(reports):
        table.add_row(label, *cells)
    for genre in sorted(reports[0].metrics["grouped_cv"]["track_recall"]):
        table.add_row(f"recall {genre}", *[f"{r.metrics['grouped_cv']['track_recall'].get(genre, 0):.2f}" for r in reports])
    return table


# --------------------------------------------------------------------------- scan and undo


def scan_line(result: TrackResult) -> str | None:
    """A scan's line for one file (``None`` for a failure: an error line on its own)."""
    path = shown(result.path)
    now = shown("; ".join(result.current) or "(none)")
    if result.status in ("tagged", "would tag"):
        return f"{result.status} {path}: {now} -> [bold]{shown('; '.join(result.written))}[/] ({result.confidence:.0%})"
    if result.status == "kept":
        model = "; ".join(result.genres) or result.genre
        return f"[yellow]kept[/] {shown(result.error)}; the model says {shown(model)} ({result.confidence:.0%})"
    if result.status == "uncertain":
        return f"[yellow]{result.status}[/] {shown(result.error)}"
    return None


def print_retrain(result: RetrainResult) -> None:
    """What ``retrain`` made: its scores, the ablation, the files written, the clips it could not use."""
    print_table(scores_table(result.reports))
    if result.effects:
        print_table(ablation_table(result.effects))
    console.print(f"Wrote {result.metrics_path} and the model card {result.card_path}", highlight=False)
    if result.failures:
        console.print(f"[yellow]{len(result.failures)} clip(s) could not be used:[/]")
        for failure in result.failures:
            console.print(f"  {escape(failure)}", highlight=False)


def print_scan_summary(summary: ScanSummary, to: Console, journal_path=None, journal_named: bool = False,
                       report_path=None) -> None:
    """A scan's closing lines: the summary table, the counts, where its journal is (and how
    to undo it), or that a dry run wrote nothing."""
    from genre_tagger.tagging.scan import WOULD_TAG

    print_table(scan_summary_table(summary), to)
    to.print(scan_counts_line(summary), highlight=False)
    if summary.failed:
        where = " and in the report's error column" if report_path else ""
        console.print(f"[red]{len(summary.failed)} failed[/] (each said above{where})", highlight=False)
    if summary.walk_errors:  # they too make the exit code 1
        console.print(f"[yellow]{len(summary.walk_errors)} skipped[/] (files or folders that could not be read, "
                      "each said above)")
    if journal_path is not None:
        again = f"{journal_path} --write" if journal_named else "--last --write"
        to.print(f"Journal of changes: {journal_path} (undo with: genre-tagger undo {again})", highlight=False)
    elif any(r.status == WOULD_TAG for r in summary.results) and not summary.stopped:
        to.print("Dry run: nothing was written. Add --write to tag the files.")


def scan_counts_line(summary: ScanSummary) -> str:
    """``20 files (0.02 h of audio) in 8.6 s: 3 from cache, 6 analysed, 11 interrupted``:
    each file counted once (an interrupted one was neither read from the cache nor analysed)."""
    hours = sum(r.duration_s or 0.0 for r in summary.results) / 3600
    line = (f"{len(summary.results)} files ({hours:.2f} h of audio) in {summary.seconds:.1f} s: "
            f"{summary.from_cache} from cache, {summary.analysed} analysed")
    return line + (f", {summary.interrupted} interrupted (not scanned)" if summary.interrupted else "")


def scan_stopped_line(summary: ScanSummary, signal_name: str | None, twice: bool, cached: bool) -> str:
    """The one line of a stopped scan: what stopped it (``signal_name``, twice or once, or
    ``summary.stopped``: a journal that could not be written), how far it got, what next."""
    from genre_tagger.tagging.scan import INTERRUPTED

    done = sum(r.status != INTERRUPTED for r in summary.results)
    if signal_name is None:
        why = f"stopped: {summary.stopped}"
    else:
        why = f"stopped by a second {signal_name}, the files in flight dropped," if twice else f"stopped by {signal_name}"
    again = ("what finished is cached: run the same scan again to go on" if cached else
             "nothing is cached (--no-cache): the same scan starts over")
    return f"{why} after {done} of {len(summary.results)} files; {again}"


def no_audio_files_line(paths, extensions) -> str:
    """Why a scan has nothing to do: a file named that is not of a supported type, or
    folders holding none."""
    from pathlib import Path

    looked = f"(looked for {', '.join(sorted(extensions))})"
    if len(paths) == 1 and Path(paths[0]).is_file():
        return f"{paths[0]}: not an audio file of a supported type {looked}"
    return f"no audio files under {', '.join(map(str, paths))} {looked}"


def scan_summary_table(summary: ScanSummary) -> Table:
    table = Table(title="Scan summary")
    table.add_column("genre / status")
    table.add_column("tracks", justify="right")
    for genre, n in summary.genre_counts().most_common():
        table.add_row(escape(genre), str(n))
    table.add_section()
    for status, n in summary.status_counts().most_common():
        table.add_row(status, str(n))
    if summary.walk_errors:
        table.add_row("folders/files skipped", str(len(summary.walk_errors)))
    return table


#: rows of an undo table: a journal of a whole library holds more than a terminal shows
UNDO_ROWS = 200


def undo_table(title: str, results: list[UndoResult]) -> Table:
    """The first :data:`UNDO_ROWS` results (warnings and refusals first), and how many more."""
    table = Table(title=escape(title))
    for column in ("file", "status", "genres now -> restored"):
        table.add_column(column)
    first = sorted(results, key=lambda r: r.status not in ("warning", "error", "changed"))[:UNDO_ROWS]
    for result in first:
        change = f"{'; '.join(result.new) or '(none)'} -> {'; '.join(result.old) or '(none)'}"
        style = {"error": "red", "changed": "yellow", "warning": "yellow"}.get(result.status, "")
        table.add_row(shown(result.path), f"[{style}]{result.status}[/]" if style else result.status,
                      shown(change if result.status in ("restored", "would restore") else result.message))
    if len(results) > len(first):
        counts = Counter(r.status for r in results)
        table.add_row(f"... {len(results) - len(first)} more", "", ", ".join(f"{n} {s}" for s, n in counts.items()))
    return table


def print_undo(undone: list[tuple[object, list[UndoResult]]], write: bool) -> None:
    """One table per journal undone (newest first), and in a dry run how to write it."""
    for journal_path, results in undone:
        print_table(undo_table(f"Undo {journal_path}" + ("" if write else " (dry run: nothing written)"), results))
    if not write and any(r.status == "would restore" for _, results in undone for r in results):
        console.print("Dry run: run the same command with --write to restore these genres.")


def journals_table(journals: list[JournalInfo], folder) -> Table:
    table = Table(title=escape(f"Journals in {folder}, newest first"))
    for column in ("journal", "started", "writes (finished)", "undone", "folders scanned"):
        table.add_column(column, overflow="fold")
    for info in journals:
        undone = f"yes, {info.undone[-1]}" if info.undone else ""
        table.add_row(shown(info.path.name), info.started, shown(info.problem) or f"{info.writes} ({info.finished})",
                      undone, shown("; ".join(info.roots)))
    return table


# --------------------------------------------------------------------------- evaluate


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def evaluation_summary_table(result: Evaluation) -> Table:
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

    def trusted(cell):
        return lambda m: "–" if m.trust is None else cell(m.trust)

    row("confidence: calibration error (ECE)", trusted(lambda t: f"{t.ece:.3f}"))
    row("tracks scan would tag", trusted(lambda t: f"{t.tagged_share:.0%}"))
    row("tags right", trusted(lambda t: "–" if t.tagged_accuracy is None else f"{t.tagged_accuracy:.0%}"))
    row("other genres left untagged", trusted(lambda t: "–" if t.outside_untagged is None
                                              else f"{t.outside_untagged:.0%} of {t.outside_tracks}"))
    table.add_section()
    row("labels outside the model's genres", lambda m: str(len(m.outside)))
    row("failed (not analysable)", lambda m: f"[red]{len(m.failed)}[/]" if m.failed else "0")
    table.add_row("missing files", *[f"[red]{len(result.missing)}[/]" if result.missing else "0"] * len(result.models))
    return table


def per_class_table(model: ModelEvaluation) -> Table:
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


def risk_coverage_table(model: ModelEvaluation) -> Table:
    """Accuracy of the most confident share of tracks, share by share (risk-coverage)."""
    table = Table(title=f"{model.model}: accuracy of the most confident tracks (risk-coverage)")
    for column in ("share tagged", "tracks", "accuracy", "min. confidence"):
        table.add_column(column, justify="right")
    for row in model.trust.risk_coverage:
        table.add_row(f"{row['coverage']:.0%}", str(row["tracks"]), f"{row['accuracy']:.2f}", f"{row['min_confidence']:.2f}")
    return table


def confusion_table(title: str, scores: Scores) -> Table:
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


def print_evaluation(result: Evaluation) -> None:
    """``evaluate``'s tables: the summary, then per model its recall, confusion and
    risk-coverage tables, what was left out, and where its predictions came from."""
    print_table(evaluation_summary_table(result))
    for model in result.models:
        if model.scores is None:
            continue
        print_table(per_class_table(model))
        print_table(confusion_table(model.model, model.scores))
        print_table(risk_coverage_table(model))
        if model.prior_shift is not None:
            print_table(confusion_table(f"{model.model}, priors adjusted", model.prior_shift.scores))
    print_left_out(result)
    for model in result.models:
        console.print(f"{model.model}: {model.from_cache} from cache, {model.from_features} from cached features, "
                      f"{model.analysed} analysed", highlight=False)


def print_left_out(result: Evaluation, limit: int = 20) -> None:
    """Missing files, failed files and labels outside each model's genres (the last capped at ``limit``)."""
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
