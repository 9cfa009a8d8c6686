"""How many segments a track's vote needs: accuracy against the number of segments voting.

``scan --max-segments N`` analyses at most N segments spread evenly over a track (the
centres of N equal strata, :func:`genre_tagger.segments.spread`); fewer segments scan
faster. This measures what fewer cost: scan's default model is scored by ``retrain``'s
grouped CV (GTZAN's 5 clip-grouped folds, the Emotify clips of GTZAN's genres in the
folds as ``retrain --cross-labels`` deals them), and each clip's majority vote is taken
over 1, 2, ... 10 of its 10 segments, chosen as ``scan`` chooses them. Track balanced
accuracy for each count, on GTZAN and on the other music.

A 30-second clip is not a 4-minute track: its segments are closer together and alike.
The figure says how many votes a track needs once they are spread over it, not how alike
a whole song is.

Run from the project root after a ``retrain`` with ``--cross-labels`` filled the cache::

    .venv/bin/python benchmarks/explore_segments.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from genre_tagger import segments
from genre_tagger.models.catalogue import best_model, default_models_dir
from genre_tagger.models.voting import track_votes
from genre_tagger.pipeline.cache import Cache, default_path
from genre_tagger.plugins import registry
from genre_tagger.selection import balanced_accuracy, track_labels
from genre_tagger.training import crossval
from genre_tagger.training.dataset import drop_duplicate_rows
from genre_tagger.training.degrade import DEGRADATIONS
from genre_tagger.training.retrain import Progress, RetrainOptions, cross_set, extract, find_training_clips

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "explore_segments"
SHARED = ROOT.parent / "shared" / "data"


def voted_on(rows, proba: np.ndarray, classes: np.ndarray, k: int, mask: np.ndarray | None = None) -> float:
    """Track balanced accuracy when each clip votes with ``k`` of its segments, spread as scan spreads them."""
    mask = np.ones(len(rows.y), bool) if mask is None else mask
    keep = np.zeros(len(rows.y), bool)
    for clip in np.unique(rows.groups[mask]):
        index = np.flatnonzero(mask & (rows.groups == clip))
        keep[index[segments.spread(len(index), k)]] = True
    tracks, predicted = track_votes(proba[keep], classes, rows.groups[keep])
    return balanced_accuracy(track_labels(rows.y[keep].astype(str), rows.groups[keep], tracks), predicted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "gtzan" / "genres")
    parser.add_argument("--cross-labels", type=Path, default=SHARED / "emotify" / "labels.csv")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    reg = registry()
    spec = reg.model(best_model(default_models_dir()))
    options = RetrainOptions(args.data, Path("/nonexistent"), cross_labels=args.cross_labels, jobs=args.jobs)
    progress = Progress(note=print, warn=print)
    extractors = [reg.feature_extractor(name) for name in spec.feature_extractors]
    with Cache(args.cache or default_path()) as cache:
        found = find_training_clips(options, progress)
        clean = extract(found.clips, extractors, cache, args.jobs, None, progress)
        copies = {name: extract(found.clips, extractors, cache, args.jobs, name, progress) for name in DEGRADATIONS}
        rows_per_genre = {str(g): int(n) * (1 + len(copies)) for g, n in zip(*np.unique(clean.y, return_counts=True))}
        other = cross_set(options, extractors, cache, rows_per_genre, progress)
    dataset = drop_duplicate_rows(clean)
    augmented = [c.subset(np.isin(c.keys(), dataset.keys())) for c in copies.values()]
    started = time.perf_counter()
    cv = crossval.grouped_cv(spec.make(), dataset, augmented=augmented, cross=other)
    rows = []
    for k in range(1, 11):
        rows.append({"segments": k, "gtzan": voted_on(dataset, cv.proba, cv.classes, k),
                     "other": voted_on(cv.cross.rows, cv.cross.proba, cv.classes, k, other.known)})
        print(rows[-1], flush=True)
    lines = [f"# Segments voting, and accuracy ({spec.name})", "",
             f"`explore_segments.py`, {time.strftime('%Y-%m-%d')}, grouped CV in {time.perf_counter() - started:.0f} s. "
             "Track balanced accuracy when each 30-s clip votes with k of its 10 segments, spread as "
             "`scan --max-segments k` spreads them.", "",
             "| segments voting | GTZAN grouped CV | other music (classical, pop, rock) |", "|---|---|---|"]
    lines += [f"| {r['segments']} | {r['gtzan']:.3f} | {r['other']:.3f} |" for r in rows]
    RESULTS.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
