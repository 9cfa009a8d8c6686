"""How long ``retrain --from-tags`` takes on a scanned library of thousands of tracks (#21).

A user runs it after a scan, so every track's features are in the cache: this measures
the whole command from there (walking the library, reading each file's genre and album
tags, reading the cache, grouped CV, the final fit, the bundle and the model card), not
the scan before it.

The library: ``--tracks`` small FLAC files in ``Artist/Album`` folders, tagged with an
owner's four genres (each merging GTZAN genres, as ``tests/test_own_genres.py``), 3 of
every 5 tracks of an album tagged. Each file's cache entry holds the features that the
default model's extractors computed of a real GTZAN clip of its genre (from the cache a
``retrain`` filled), as many rows as scan analyses of a 4-minute track by default, and
jittered by 0.1 % so that no two rows are duplicates: the training sees real music, as
many rows as a real library's. Making
the files and their cache entries is timed apart and not counted.

Run from the project root after a ``retrain`` filled the cache::

    .venv/bin/python benchmarks/bench_own_genres.py [--tracks 5000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import mutagen
import numpy as np

from genre_tagger.models.catalogue import best_model, default_models_dir
from genre_tagger.pipeline import cache as cache_module
from genre_tagger.pipeline.analysis import selection_name
from genre_tagger.pipeline.encode import encode
from genre_tagger.plugins import registry
from genre_tagger.segments import DEFAULT_MAX_SEGMENTS
from genre_tagger.training.clips import find_clips
from genre_tagger.training.retrain import Progress, RetrainOptions, retrain

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_own_genres"
OWNER_GENRES = {
    "Jazz & Blues": ["jazz", "blues"],
    "Orchestral": ["classical"],
    "Guitar Rock": ["rock", "metal"],
    "Dance Floor": ["disco", "hiphop", "pop"],
}
TRACKS_PER_ALBUM = 10


def make_library(root: Path, n_tracks: int, cache: cache_module.Cache, data: Path) -> int:
    """``n_tracks`` tagged FLAC files under ``root`` with cache entries; returns how many are tagged."""
    reg = registry()
    extractors = [reg.feature_extractor(name) for name in reg.model(best_model(default_models_dir())).feature_extractors]
    clips = {}
    for clip in find_clips(data):
        rows = {e.name: cache.get_features(cache_module.file_key(clip.path), cache_module.features_key(e.name, e.version),
                                           "all") for e in extractors}
        if all(r is not None for r in rows.values()):
            clips.setdefault(clip.genre, []).append(rows)
    if not clips:
        raise SystemExit(f"no cached features of {data}: run retrain first")
    silence = np.zeros(2205, np.float32)
    rng = np.random.default_rng(0)
    selection = selection_name(DEFAULT_MAX_SEGMENTS)
    tagged = 0
    owners = list(OWNER_GENRES)
    for i in range(n_tracks):
        owner = owners[(i // TRACKS_PER_ALBUM) % len(owners)]
        sources = [g for g in OWNER_GENRES[owner] if g in clips]
        source = sources[i % len(sources)]
        album = i // TRACKS_PER_ALBUM
        path = root / f"{owner} Artist {album % 50}" / f"Album {album}" / f"{i % TRACKS_PER_ALBUM + 1:02d}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        encode(path, [silence], 22050, "flac")
        audio = mutagen.File(path)
        audio["album"] = [f"Album {album}"]
        if i % 5 < 3:
            audio["genre"] = [owner]
            tagged += 1
        audio.save()
        rows = clips[source][(i // len(sources)) % len(clips[source])]
        key = cache_module.file_key(path)
        for extractor in extractors:  # jittered by 0.1 %: tracks sharing a clip are not exact duplicates
            clip = rows[extractor.name]  # as many segments as scan analyses of a 4-minute track
            track = np.resize(clip, (DEFAULT_MAX_SEGMENTS, clip.shape[1]))
            jittered = track * (1 + 1e-3 * rng.standard_normal(track.shape))
            cache.put_features(key, cache_module.features_key(extractor.name, extractor.version), selection, jittered)
    return tagged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=5000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan" / "genres")
    parser.add_argument("--cache", type=Path, default=None, help="the cache retrain filled (default: the usual one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        bench_cache = folder / "cache.sqlite"
        started = time.perf_counter()
        with cache_module.Cache(args.cache or cache_module.default_path()) as source, \
                cache_module.Cache(bench_cache) as cache:
            # the real clips' features, copied into the benchmark's own cache
            tagged = make_library(folder / "Music", args.tracks, _Both(source, cache), args.data)
        made = time.perf_counter() - started
        options = RetrainOptions(None, folder / "models", from_tags=folder / "Music")
        lines: list[str] = []
        started = time.perf_counter()
        with cache_module.Cache(bench_cache) as cache:
            result = retrain(options, registry(), cache, Progress(note=lines.append, warn=lines.append))
        seconds = time.perf_counter() - started
    (report,) = result.reports
    cv = report.metrics["grouped_cv"]
    summary = {"tracks": args.tracks, "tagged": tagged, "model": report.name, "seconds": round(seconds, 1),
               "library_made_s": round(made, 1), "segments": cv["n_segments"],
               "grouped_cv_track_balanced_accuracy": round(cv["track_balanced_accuracy"], 3)}
    print(json.dumps(summary, indent=2))
    RESULTS.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(
        f"# retrain --from-tags on a scanned library\n\n`bench_own_genres.py`, {time.strftime('%Y-%m-%d')}: "
        f"{args.tracks} tracks, {tagged} of them tagged in 4 genres, their features in the cache.\n\n"
        f"`retrain --from-tags` ({report.name}, {cv['n_segments']} segments): **{seconds:.1f} s**, from walking the "
        "library to the model card (grouped-CV track balanced accuracy "
        f"{cv['track_balanced_accuracy']:.3f}, many tracks sharing a clip's features).\n")
    return 0


class _Both:
    """Reads features from one cache and writes the benchmark's entries to another."""

    def __init__(self, source: cache_module.Cache, target: cache_module.Cache) -> None:
        self.get_features, self.put_features = source.get_features, target.put_features


if __name__ == "__main__":
    raise SystemExit(main())
