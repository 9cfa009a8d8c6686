"""Levers for music that is not GTZAN (#19), measured by ``retrain``'s own grouped CV.

Every row trains logistic regression (:class:`~genre_tagger_plugins.estimators.logreg.LogReg`,
balanced class weights, C by inner grouped CV) on GTZAN's clips and scores it three ways:

- **GTZAN grouped CV** -- track balanced accuracy over the 5 clip-grouped folds;
- **other music** -- the Emotify clips of GTZAN's genres (classical, pop, rock), each
  scored by the fold model that did not train on it (:class:`~genre_tagger.training.crossval.CrossSet`):
  balanced accuracy over those three genres and pop's recall, the genre GTZAN confuses;
- **artist split** -- Kereliuk et al.'s artist-filtered split of GTZAN.

The levers:

- **other music in training**: the Emotify clips of the other folds in every training
  set, each genre's repeated to weigh as much as GTZAN's rows of that genre (what
  ``retrain`` does), or all repeated the same number of times, or none;
- **features**: musicnn's embedding alone, beside the hand-made ``gtzan57`` +
  ``timbre-rhythm``, and musicnn's own **tag layer** (the logits of its 50 Million Song
  Dataset tags, ``rock``, ``pop``, ``Hip-Hop``, ``country`` ..., a linear map of the
  embedding that listeners' tags trained) as columns of their own;
- **augmentation**: the band-limited and mp3 copies ``retrain`` adds.

Run from the project root after a ``retrain`` with ``--cross-labels`` has filled the cache
(about 3 minutes a row on 2 cores)::

    .venv/bin/python benchmarks/explore_crossdataset.py [--rows NAME,...]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre_tagger.pipeline.cache import Cache, default_path
from genre_tagger.plugins import registry
from genre_tagger.training import crossval
from genre_tagger.training.dataset import Dataset, drop_duplicate_rows
from genre_tagger.training.degrade import DEGRADATIONS
from genre_tagger.training.retrain import Progress, RetrainOptions, cross_set, extract, find_training_clips
from genre_tagger_plugins import musicnn
from genre_tagger_plugins.estimators.logreg import LogReg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "explore_crossdataset"
SHARED = ROOT.parent / "shared" / "data"
HAND_MADE = ("gtzan57", "timbre-rhythm")
TAGS = "musicnn-tags"


def tag_logits(embedding: np.ndarray) -> np.ndarray:
    """musicnn's 50 tag logits ``[n, 50]`` of its embedding ``[n, 200]`` (its output layer)."""
    w = musicnn.weights()
    return embedding @ w["dense_1/kernel"] + w["dense_1/bias"]


def with_tags(dataset: Dataset) -> Dataset:
    """``dataset`` with a :data:`TAGS` block computed from its ``musicnn`` block."""
    features = dict(dataset.features, **{TAGS: tag_logits(dataset.features["musicnn"])})
    return Dataset(features, dict(dataset.versions, **{TAGS: "derived"}), dataset.y, dataset.groups, dataset.segment,
                   dataset.failures, dataset.n_duplicates_dropped, dataset.albums)


@dataclass(frozen=True)
class Row:
    name: str
    extractors: tuple[str, ...]
    cross_weight: str | int = "genre"  # "genre" (retrain's), repeats for every genre, or 0: not trained on
    augment: bool = True


ROWS = [
    Row("hand-made + musicnn, other music weighed per genre (retrain's)", HAND_MADE + ("musicnn",)),
    Row("GTZAN only (no other music in training)", HAND_MADE + ("musicnn",), 0),
    Row("other music's rows once each", HAND_MADE + ("musicnn",), 1),
    Row("other music's rows 3 times", HAND_MADE + ("musicnn",), 3),
    Row("other music's rows 10 times (as many as GTZAN's in all)", HAND_MADE + ("musicnn",), 10),
    Row("musicnn alone", ("musicnn",)),
    Row("musicnn alone, GTZAN only", ("musicnn",), 0),
    Row("hand-made + musicnn + tag layer", HAND_MADE + ("musicnn", TAGS)),
    Row("musicnn + tag layer", ("musicnn", TAGS)),
    Row("tag layer alone", (TAGS,)),
    Row("tag layer alone, GTZAN only", (TAGS,), 0),
    Row("no augmentation", HAND_MADE + ("musicnn",), "genre", False),
]


def measure(row: Row, clean: Dataset, copies: dict[str, Dataset], other: crossval.CrossSet,
            splits: dict[str, set[str]]) -> dict:
    dataset = drop_duplicate_rows(clean.select(row.extractors))
    augmented = [c.select(row.extractors) for c in copies.values()] if row.augment else []
    augmented = [c.subset(np.isin(c.keys(), dataset.keys())) for c in augmented]
    cross = other.select(row.extractors)
    if row.cross_weight == 0:
        cross = cross.without_training()
    elif row.cross_weight != "genre":
        cross = crossval.CrossSet(cross.dataset, cross.folds, cross.known, True,
                                  {genre: int(row.cross_weight) for genre in cross.weight})
    elif not row.augment:  # the training sets hold a third of the rows
        cross = crossval.CrossSet(cross.dataset, cross.folds, cross.known, True,
                                  {genre: max(1, round(n / 3)) for genre, n in cross.weight.items()})
    started = time.perf_counter()
    cv = crossval.grouped_cv(LogReg(), dataset, augmented=augmented, cross=cross)
    other_scores = crossval.cross_scores(cv.cross, cv.classes, cross.known)
    artist = crossval.artist_split(LogReg(), dataset, splits, augmented, cross.training_rows())
    return {
        "row": row.name, "extractors": list(row.extractors), "cross_weight": cross.weight if cross.train else {},
        "augment": row.augment, "gtzan": cv.scores["track_balanced_accuracy"],
        "gtzan_std": cv.scores["track_balanced_accuracy_std"],
        "other": other_scores["track_balanced_accuracy"], "other_std": other_scores["track_balanced_accuracy_std"],
        "other_recall": other_scores["track_recall"], "other_outside": other_scores["outside_genres"],
        "artist": artist.scores["track_balanced_accuracy"], "seconds": round(time.perf_counter() - started, 1),
    }


def table(results: list[dict]) -> str:
    lines = ["| levers | GTZAN grouped CV | other music (classical, pop, rock) | pop recall | rock | classical "
             "| artist split |", "|---|---|---|---|---|---|---|"]
    for r in results:
        recall = r["other_recall"]
        lines.append(f"| {r['row']} | {r['gtzan']:.3f} ± {r['gtzan_std']:.3f} | {r['other']:.3f} ± {r['other_std']:.3f} "
                     f"| {recall.get('pop', 0):.2f} | {recall.get('rock', 0):.2f} | {recall.get('classical', 0):.2f} "
                     f"| {r['artist']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "gtzan" / "genres")
    parser.add_argument("--split-dir", type=Path, default=SHARED / "gtzan" / "splits")
    parser.add_argument("--cross-labels", type=Path, default=SHARED / "emotify" / "labels.csv")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--rows", default=None, help="comma-separated row numbers (1-based) to run")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    rows = [ROWS[int(i) - 1] for i in args.rows.split(",")] if args.rows else ROWS

    options = RetrainOptions(args.data, Path("/nonexistent"), args.split_dir, cross_labels=args.cross_labels,
                             jobs=args.jobs)
    progress = Progress(note=print, warn=print)
    reg = registry()
    extractors = [reg.feature_extractor(name) for name in HAND_MADE + ("musicnn",)]
    with Cache(args.cache or default_path()) as cache:
        found = find_training_clips(options, progress)
        clean = with_tags(extract(found.clips, extractors, cache, args.jobs, None, progress))
        copies = {name: with_tags(extract(found.clips, extractors, cache, args.jobs, name, progress))
                  for name in DEGRADATIONS}
        training_rows = {str(g): int(n) * (1 + len(copies)) for g, n in zip(*np.unique(clean.y, return_counts=True))}
        other = cross_set(options, extractors, cache, training_rows, progress)
    other = crossval.CrossSet(with_tags(other.dataset), other.folds, other.known, other.train, other.weight)

    results = []
    for row in rows:
        results.append(measure(row, clean, copies, other, found.splits))
        r = results[-1]
        print(f"{r['row']}: GTZAN {r['gtzan']:.3f}, other {r['other']:.3f} (pop {r['other_recall'].get('pop', 0):.2f}), "
              f"artist {r['artist']:.3f} ({r['seconds']} s)", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(results, indent=2))
    RESULTS.with_suffix(".md").write_text("# Levers for other music (#19)\n\n`explore_crossdataset.py`, "
                                          f"{time.strftime('%Y-%m-%d')}\n\n" + table(results) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
