"""Which novelty view tells what is not music from music of any recording chain (#31 item 3)?

Every music track is measured out of fold: GTZAN's clips (clean and their degraded copies) by
a detector fitted on the other grouped-CV folds, Emotify's by a detector that saw no Emotify
clip. The probes (not music: noises, hum, tones, a sweep, clicks, espeak-ng speech, and
librosa's real speech and animal recordings) by a detector fitted on everything. Per view
(the columns of one extractor, or all), a track's distance is the mean over its segments of
the class-conditional Mahalanobis distance (:class:`Novelty`), divided by the median over
clean GTZAN tracks; the detector is fitted either on clean rows or on clean rows and the
degraded copies'. For each, the largest distance of any music track, and how many probes lie
above it (each probe kind is one the thresholds never saw).

Run from the project root once a ``retrain`` with ``--cross-labels`` has filled the cache::

    .venv/bin/python research/explore_not_music.py
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from genre_tagger.models.assessment import Novelty
from genre_tagger.pipeline.cache import Cache, default_path
from genre_tagger.plugins import registry
from genre_tagger.training.clips import Clip
from genre_tagger.training.crossval import clip_folds
from genre_tagger.training.degrade import DEGRADATIONS
from genre_tagger.training.retrain import Progress, RetrainOptions, cross_set, extract, find_training_clips

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "research" / "results" / "explore_not_music"
PROBES = Path("/tmp/genre-tagger-not-music-probes")
EXTRACTORS = ("gtzan57", "timbre-rhythm", "musicnn")


def make_probes() -> list[Clip]:
    sys.path.insert(0, str(ROOT / "tests"))
    import audiofactory

    PROBES.mkdir(exist_ok=True)
    sr, seconds = 44100, 15.0
    signals = {"white.mp3": audiofactory.noise(seconds, sr, 0.2, seed=11), "brown.flac": audiofactory.brown_noise(seconds, sr, seed=12), "hum60.wav": audiofactory.hum(seconds, sr, 60.0),
               "tone440.ogg": audiofactory.tone(seconds, sr, 440.0), "sweep.mp3": audiofactory.sweep(seconds, sr),
               "clicks.flac": audiofactory.random_clicks(seconds, sr, seed=13), "metronome90.wav": audiofactory.clicks(seconds, sr, bpm=90)}
    for name, signal in signals.items():
        if signal is not None and not (PROBES / name).exists():
            audiofactory.write(PROBES / name, signal, sr)
    texts = {"speech-en.wav": ("en-gb", "The committee met on Tuesday to discuss the budget for the coming year, and agreed to "
                                        "postpone the decision until the figures from the regional offices arrive next month."),
             "speech-fr.wav": ("fr", "Bonjour à tous. Aujourd'hui nous allons parler de l'histoire de la ville, de ses rues "
                                     "anciennes et des gens qui y vivaient il y a trois siècles.")}
    for name, (voice, text) in texts.items():
        if not (PROBES / name).exists():
            audiofactory.speech(PROBES / name, text, voice)
    clips = [Clip(p, "probe", f"probe.{p.stem}") for p in sorted(PROBES.iterdir())]
    with (SHARED / "librosa" / "labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            clips.append(Clip(SHARED / "librosa" / row["path"], row["kind"], f"librosa.{Path(row['path']).stem}"))
    return clips


def track_distance(novelty: Novelty, dataset, view: int) -> dict[str, float]:
    d = novelty.distances(dataset.X)[:, view]
    return {g: float(d[dataset.groups == g].mean()) for g in np.unique(dataset.groups)}


def main() -> int:
    options = RetrainOptions(SHARED / "gtzan" / "genres", Path("/nonexistent"), SHARED / "gtzan" / "splits",
                             cross_labels=[SHARED / "emotify" / "labels.csv"], jobs=2)
    progress = Progress(note=print, warn=print)
    reg = registry()
    extractors = [reg.feature_extractor(n) for n in EXTRACTORS]
    with Cache(default_path()) as cache:
        found = find_training_clips(options, progress)
        clean = extract(found.clips, extractors, cache, 2, None, progress)
        copies = {n: extract(found.clips, extractors, cache, 2, n, progress) for n in DEGRADATIONS}
        other = cross_set(options, extractors, cache, {str(g): 1 for g in np.unique(clean.y)}, progress).dataset
        probes = extract(make_probes(), extractors, cache, 2, None, progress)
    widths = [clean.features[n].shape[1] for n in EXTRACTORS]
    edges = np.cumsum([0] + widths)
    views = {n: (int(edges[i]), int(edges[i + 1])) for i, n in enumerate(EXTRACTORS)} | {"all": (0, int(edges[-1]))}
    names = list(views)
    folds = clip_folds(clean)
    known_other = np.isin(other.y, np.unique(clean.y))
    results = {}
    for fitted_on in ("clean", "clean+copies"):
        def fit(mask, emotify=True):
            X = [clean.X[mask]] + ([c.X[np.isin(c.groups, clean.groups[mask])] for c in copies.values()]
                                   if fitted_on == "clean+copies" else [])
            y = [clean.y[mask]] + ([c.y[np.isin(c.groups, clean.groups[mask])] for c in copies.values()]
                                   if fitted_on == "clean+copies" else [])
            if emotify:
                X.append(other.X[known_other]); y.append(other.y[known_other])
            return Novelty.fit(np.vstack(X), np.concatenate(y), list(views.values()))
        music: dict[str, dict[str, list[float]]] = {"train": {}, **{f"degraded:{n}": {} for n in copies}, "emotify": {}, "emotify-outside": {}}
        for fold in np.unique(folds):
            detector = fit(folds != fold)
            test = clean.subset(folds == fold)
            for v, name in enumerate(names):
                music["train"].setdefault(name, []).extend(track_distance(detector, test, v).values())
                for n, c in copies.items():
                    rows = c.subset(np.isin(c.groups, test.groups))
                    music[f"degraded:{n}"].setdefault(name, []).extend(track_distance(detector, rows, v).values())
        unseen = fit(np.ones(len(clean.y), bool), emotify=False)
        for v, name in enumerate(names):
            music["emotify"][name] = list(track_distance(unseen, other.subset(known_other), v).values())
            music["emotify-outside"][name] = list(track_distance(unseen, other.subset(~known_other), v).values())
        full = fit(np.ones(len(clean.y), bool))
        rows = {}
        for v, name in enumerate(names):
            scale = float(np.median(music["train"][name]))
            largest = {s: float(np.max(d[name]) / scale) for s, d in music.items()}
            q99 = {s: float(np.quantile(d[name], 0.99) / scale) for s, d in music.items()}
            probe = {g: d / scale for g, d in track_distance(full, probes, v).items()}
            rows[name] = {"largest": largest, "q99": q99, "probes": probe}
            music_max = max(v for s, v in largest.items() if s != "emotify-outside")
            print(f"\n[{fitted_on}] view {name}: largest music distance per source "
                  + ", ".join(f"{s} {v:.2f}" for s, v in largest.items()))
            for g, d in sorted(probe.items()):
                print(f"   {g[:48]:48s} {d:8.2f} {'ABOVE' if d > music_max else ''}")
        results[fitted_on] = rows
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
