"""The ``genre-tagger`` command: a thin shell over the library.

Exit codes: 0 success, 1 when some files failed, 2 for usage errors.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from genre_tagger import __version__, bundle, modelcard, training
from genre_tagger.cache import Cache, default_path
from genre_tagger.dataset import find_clips, read_split_dir
from genre_tagger.plugins import PluginError, registry

console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


def _open_cache(path: str | None, enabled: bool) -> Cache:
    return Cache((Path(path) if path else default_path()) if enabled else None)


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


@main.command("plugins")
def plugins_command() -> None:
    """List the registered feature extractors and models."""
    try:
        rows = registry().describe()
    except PluginError as error:
        _fail(str(error))
    table = Table(title="Registered plugins")
    for column in ("name", "version", "kind", "consumes", "from"):
        table.add_column(column)
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
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1), help="Worker processes for feature extraction.")
@cache_options
def retrain(data_dir: Path, out_dir: Path, split_dir: Path | None, model_names: str | None, jobs: int,
            cache_path: str | None, no_cache: bool) -> None:
    """Train the models from a GTZAN-style folder and report honest scores."""
    plugins = registry()
    names = model_names.split(",") if model_names else sorted(plugins.models)
    try:
        model_classes = [plugins.model(name.strip()) for name in names]
    except PluginError as error:
        _fail(str(error))
    clips = find_clips(data_dir)
    if not clips:
        _fail(f"{data_dir}: no audio files found at <genre>/<file>")
    genres = sorted({clip.genre for clip in clips})
    if len(genres) < 2:
        _fail(f"{data_dir}: found only the genre(s) {genres}; need at least two genre folders")
    splits = read_split_dir(split_dir) if split_dir else None
    console.print(f"Found {len(clips)} clips of {len(genres)} genres in {data_dir}")

    datasets: dict[str, training.Dataset] = {}
    with _open_cache(cache_path, not no_cache) as cache:
        for extractor_name in sorted({m.feature_extractor for m in model_classes}):
            extractor = plugins.feature_extractor(extractor_name)
            with _progress() as progress:
                task = progress.add_task(f"features {extractor_name}", total=len(clips))

                def advance(clip, result):
                    if result is not None and result.error:
                        progress.console.print(f"[yellow]skipped[/] {result.error}", highlight=False)
                    progress.advance(task)

                dataset = training.build_dataset(clips, extractor, cache, jobs, advance)
            datasets[extractor_name] = training.drop_duplicate_rows(dataset)

    out_dir.mkdir(parents=True, exist_ok=True)
    saved: list[bundle.Bundle] = []
    for model_class in model_classes:
        dataset = datasets[model_class.feature_extractor]
        console.print(f"Training and scoring [bold]{model_class.name}[/] on {len(dataset.y)} segments ...")
        trained = training.train_and_score(model_class, dataset, splits)
        summary = dataset.summary()
        summary["data"] = str(data_dir)
        summary["split_dir"] = str(split_dir) if split_dir else None
        trained_bundle = bundle.Bundle(
            trained.model, dataset.feature_extractor, dataset.feature_version, training=summary, metrics=trained.metrics
        )
        bundle.save(trained_bundle, out_dir / model_class.name)
        saved.append(trained_bundle)
        console.print(f"  saved {out_dir / model_class.name} ({trained.seconds:.0f} s)")

    failures = sorted({f for d in datasets.values() for f in d.failures})
    metrics = {b.name: {"metrics": b.metrics, "training": b.training} for b in saved}
    metrics["failures"] = failures
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    command = shlex.join(["genre-tagger", *sys.argv[1:]])
    description = f"`{data_dir}`: {len(clips)} clips found, genres: {', '.join(genres)}."
    (out_dir / "README.md").write_text(modelcard.render(saved, command, description))
    Console().print(_scores_table(saved))
    console.print(f"Wrote {out_dir / 'metrics.json'} and the model card {out_dir / 'README.md'}")
    if failures:
        console.print(f"[yellow]{len(failures)} clip(s) could not be used:[/]")
        for failure in failures:
            console.print(f"  {failure}", highlight=False)


def _scores_table(bundles: list[bundle.Bundle]) -> Table:
    table = Table(title="Scores (grouped CV keeps every clip in one fold; the leaky split does not)")
    table.add_column("score")
    for b in bundles:
        table.add_column(b.name, justify="right")
    for protocol, key, label in modelcard.HEADLINE:
        table.add_row(label, *[modelcard.score_cell(b.metrics, protocol, key) for b in bundles])
    genres = sorted(bundles[0].metrics["grouped_cv"]["track_recall"])
    for genre in genres:
        table.add_row(f"recall {genre}", *[f"{b.metrics['grouped_cv']['track_recall'].get(genre, 0):.2f}" for b in bundles])
    return table
