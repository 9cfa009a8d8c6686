"""Does aligning a library's feature statistics to the training source's transfer (#31)?

A scan sees a whole library at once, so its features could be moved, before the model
reads them, so that their statistics match the training source's: the mean (*shift*),
mean and spread per column (*z-score*), the spread only (*scale*), or the full covariance
(*CORAL*, Sun, Feng & Saenko 2016, in the training source's standardised space with a
unit ridge). That removes what a whole recording chain adds to every track -- and also
what a library's genre mix adds, which is the risk: a library of one genre would be
pulled towards the training source's average genre.

So every method is scored on libraries of skewed mixes, never only on a balanced one:

- *unseen source*: models trained on GTZAN's 519 clean clips, scored on Emotify libraries
  (all 200 clips, electronic included; the 150 of GTZAN's genres; rock-heavy: 50 rock,
  10 pop, 10 classical; pop + rock; classical alone; pop alone) -- track balanced accuracy
  over the library's known-genre tracks (accuracy for a one-genre library);
- *the other way round*: trained on Emotify's 200 clips, scored on GTZAN's classical, pop
  and rock clips (100 / 21 / 100);
- *in-source*: GTZAN's grouped CV, each test fold a library, and each fold's clips of one
  genre a library of their own (the mean over genres and folds).

Model: logistic regression at ``C = 0.001`` with balanced classes (the shipped default's
recipe, no augmentation here), majority vote of each clip's 3-s segments, on musicnn's
embedding alone and on the default's columns (gtzan57 + timbre-rhythm + musicnn). Library
statistics are computed over its segments. Run from the project root (fills the feature
cache on first use)::

    .venv/bin/python research/explore_source_alignment.py --jobs 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from genre_tagger.selection import GroupedFolds, track_balanced_accuracy
from genre_tagger.training.dataset import Dataset
from genre_tagger_plugins.estimators.logreg import LogReg
from shared_clips import gtzan_and_emotify

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "research" / "results" / "explore_source_alignment"
METHODS = ("none", "shift", "scale", "z-score", "coral")
FEATURE_SETS = (("musicnn",), ("gtzan57", "timbre-rhythm", "musicnn"))


def _sqrtm(cov: np.ndarray, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.clip(values, 1e-12, None) ** power) @ vectors.T


def align(X: np.ndarray, train: np.ndarray, method: str) -> np.ndarray:
    """``X [n, d]`` (a library's segments) moved so that its statistics match ``train``'s
    ``[m, d]`` by ``method`` (one of :data:`METHODS`)."""
    mu_s, sd_s = train.mean(0), train.std(0) + 1e-9
    mu_t, sd_t = X.mean(0), X.std(0) + 1e-9
    if method == "none":
        return X
    if method == "shift":
        return X - mu_t + mu_s
    if method == "scale":
        return (X - mu_t) / sd_t * sd_s + mu_t
    if method == "z-score":
        return (X - mu_t) / sd_t * sd_s + mu_s
    if method == "coral":
        Zs, Zt = (train - mu_s) / sd_s, (X - mu_s) / sd_s
        ridge = np.eye(X.shape[1])
        recolour = _sqrtm(np.cov(Zt, rowvar=False) + ridge, -0.5) @ _sqrtm(np.cov(Zs, rowvar=False) + ridge, 0.5)
        return ((Zt - Zt.mean(0)) @ recolour) * sd_s + mu_s
    raise ValueError(method)


def library_score(model: LogReg, train_X: np.ndarray, data: Dataset, tracks: np.ndarray, known: set[str],
                  method: str) -> float:
    """Balanced accuracy of ``model``'s majority votes over the known-genre ``tracks`` of a
    library made of ``tracks`` of ``data``, aligned to ``train_X`` by ``method``."""
    rows = np.isin(data.groups, tracks)
    proba = model.predict_proba(align(data.X[rows], train_X, method))
    keep = np.isin(data.y[rows], list(known))
    return track_balanced_accuracy(data.y[rows][keep], proba[keep], model.classes_, data.groups[rows][keep])


def tracks_of(data: Dataset, genres: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """``genres[g]`` tracks of each genre ``g`` of ``data``, drawn without replacement."""
    picked = []
    for genre, n in genres.items():
        candidates = np.unique(data.groups[data.y == genre])
        picked += list(rng.choice(candidates, size=min(n, len(candidates)), replace=False))
    return np.array(picked)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    clips, gtzan, emotify = gtzan_and_emotify(args.jobs)
    rng = np.random.default_rng(0)
    shared = {"classical", "pop", "rock"}
    libraries = {
        "Emotify, all 200 (electronic too)": np.unique(emotify.groups),
        "Emotify, classical + pop + rock": tracks_of(emotify, {"classical": 50, "pop": 50, "rock": 50}, rng),
        "Emotify, rock-heavy (50 / 10 / 10)": tracks_of(emotify, {"rock": 50, "pop": 10, "classical": 10}, rng),
        "Emotify, pop + rock": tracks_of(emotify, {"pop": 50, "rock": 50}, rng),
        "Emotify, classical alone": tracks_of(emotify, {"classical": 50}, rng),
        "Emotify, pop alone": tracks_of(emotify, {"pop": 50}, rng),
    }
    rows = []

    def record(features, library, scores):
        rows.append({"features": "+".join(features), "library": library, **{m: round(s, 3) for m, s in scores.items()}})
        print(rows[-1], flush=True)

    for features in FEATURE_SETS:
        g, e = gtzan.select(features), emotify.select(features)
        model = LogReg(C=0.001).fit(g.X, g.y)
        for name, tracks in libraries.items():
            record(features, "unseen: " + name, {m: library_score(model, g.X, e, tracks, shared, m) for m in METHODS})
        back = LogReg(C=0.001).fit(e.X, e.y)
        gtzan_tracks = np.unique(g.groups[np.isin(g.y, list(shared))])
        record(features, "unseen, the other way: trained on Emotify, GTZAN classical + pop + rock",
               {m: library_score(back, e.X, g, gtzan_tracks, shared, m) for m in METHODS})
        fold_scores = {m: [] for m in METHODS}
        genre_scores = {m: [] for m in METHODS}
        for train, test in GroupedFolds(5, 0).split(g.X, g.y, g.groups):
            part = g.subset(np.isin(np.arange(len(g.y)), train))
            fold_model = LogReg(C=0.001).fit(part.X, part.y)
            genres = set(np.unique(g.y))
            test_tracks = np.unique(g.groups[test])
            for m in METHODS:
                fold_scores[m].append(library_score(fold_model, part.X, g, test_tracks, genres, m))
                for genre in sorted(genres):
                    one = np.unique(g.groups[test][g.y[test] == genre])
                    genre_scores[m].append(library_score(fold_model, part.X, g, one, genres, m))
        record(features, "in-source: GTZAN grouped CV, each test fold a library",
               {m: float(np.mean(s)) for m, s in fold_scores.items()})
        record(features, "in-source: GTZAN grouped CV, each fold's genre a library",
               {m: float(np.mean(s)) for m, s in genre_scores.items()})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps({"methods": METHODS, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
