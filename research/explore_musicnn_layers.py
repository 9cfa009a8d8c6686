"""Does musicnn's pooled layer transfer to an unseen source better than its embedding (#31)?

musicnn's authors found the layer below the embedding (each of 753 channels' maximum and
mean over time, ``musicnn.pooled_numpy``) the best input for other tasks. Here it, and
musicnn's 50 tag probabilities (and their logits), are scored as the embedding was (`explore_unseen_source.py`): logistic regression with
balanced classes at fixed ``C``, majority vote of each clip's 3-s segments, trained on one
source and scored on the other's clips of the shared genres (classical, pop, rock) --
GTZAN's 519 clean clips -> Emotify's 150, and Emotify's 200 -> GTZAN's 221. Both
directions are unseen-source figures.

The pooled layer is computed by the numpy forward pass (the shipped ONNX graph outputs the
embedding only), for every segment of every clip, and kept in
``~/.cache/genre-tagger/explore_musicnn_layers.npz``; the embedding and the hand-made
features come from the feature cache a ``retrain`` or `explore_unseen_source.py` filled.
Run from the project root::

    .venv/bin/python research/explore_musicnn_layers.py --jobs 2
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from genre_tagger import segments
from genre_tagger.pipeline.audio import load
from genre_tagger.pipeline.cache import default_path
from genre_tagger.models.voting import track_votes
from genre_tagger.selection import track_balanced_accuracy
from genre_tagger.training.dataset import Dataset
from genre_tagger_plugins import musicnn
from genre_tagger_plugins.estimators.logreg import LogReg
from shared_clips import SHARED, gtzan_and_emotify

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "research" / "results" / "explore_musicnn_layers"
POOLED = default_path().with_name("explore_musicnn_layers.npz")
SHARED_GENRES = ["classical", "pop", "rock"]


def pooled_of(path: str) -> np.ndarray:
    """The pooled layer of every 3-s segment of one file, ``[n_segments, 1506]``."""
    patches = musicnn.log_mel_patches(segments.split(load(path)))
    return np.concatenate([musicnn.pooled_numpy(patches[i : i + 1]) for i in range(len(patches))]).astype(np.float32)


def pooled_layers(paths: dict[str, str], jobs: int) -> dict[str, np.ndarray]:
    """:func:`pooled_of` per clip id of ``paths`` (clip id -> file), cached in :data:`POOLED`."""
    if POOLED.exists():
        stored = np.load(POOLED)
        return {key.replace("|", "/"): stored[key] for key in stored.files}
    with Pool(jobs) as pool:
        layers = dict(zip(paths, pool.map(pooled_of, list(paths.values()), chunksize=4)))
    np.savez(POOLED, **{key.replace("/", "|"): rows for key, rows in layers.items()})
    return layers


def columns(data: Dataset, layers: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The columns ``name`` names (``+``-joined: max, mean, embedding, tags, logits, hand) of ``data``'s rows."""
    rows = np.vstack([layers[clip][segment] for clip, segment in zip(data.groups, data.segment)])
    tags = musicnn.tag_probabilities(data.features["musicnn"])
    parts = {"max": rows[:, 0::2], "mean": rows[:, 1::2], "embedding": data.features["musicnn"], "tags": tags,
             "logits": np.log(tags) - np.log1p(-tags), "hand": np.hstack([data.features["gtzan57"], data.features["timbre-rhythm"]])}
    return np.hstack([parts[p] for p in name.split("+")])


def unseen_score(train: Dataset, test: Dataset, layers, name: str, C: float) -> float:
    model = LogReg(C=C).fit(columns(train, layers, name), train.y)
    keep = np.isin(test.y, SHARED_GENRES)
    test = test.subset(keep)
    return track_balanced_accuracy(test.y, model.predict_proba(columns(test, layers, name)), model.classes_,
                                   test.groups)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    clips, gtzan, emotify = gtzan_and_emotify(args.jobs)
    paths = {clip.clip_id: str(clip.path) for clip in clips}
    paths |= {str(g): str(SHARED / "emotify" / g) for g in np.unique(emotify.groups)}
    layers = pooled_layers(paths, args.jobs)
    rows = []
    for name in ("max", "mean", "max+mean", "embedding", "max+embedding", "hand+max+mean", "hand+embedding",
                 "tags", "logits", "tags+embedding"):
        for C in (0.0001, 0.001, 0.01) + ((0.1, 1.0) if "tags" in name or "logits" in name else ()):
            rows.append({"columns": name, "C": C,
                         "GTZAN -> Emotify": round(unseen_score(gtzan, emotify, layers, name, C), 3),
                         "Emotify -> GTZAN": round(unseen_score(emotify, gtzan, layers, name, C), 3)})
            print(rows[-1], flush=True)
    # where Emotify's pop goes, and how musicnn's own tags rate it
    model = LogReg(C=0.001).fit(gtzan.features["musicnn"], gtzan.y)
    pop = emotify.subset(emotify.y == "pop")
    tracks, votes = track_votes(model.predict_proba(pop.features["musicnn"]), model.classes_, pop.groups, "majority")
    pop_votes = dict(Counter(votes.tolist()).most_common())
    tags = {f"{source} pop": {t: round(float(p), 2) for t, p in zip(musicnn.MSD_TAGS, musicnn.tag_probabilities(
        data.features["musicnn"][data.y == "pop"]).mean(0)) if t in ("pop", "rock", "indie", "female vocalists")}
        for source, data in (("Emotify", emotify), ("GTZAN", gtzan))}
    print("Emotify pop voted", pop_votes, "; mean tag probabilities", tags)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps({"rows": rows, "emotify_pop_votes": pop_votes, "pop_tags": tags},
                                                       indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
