"""Which recipe transfers to a source it never saw (#31): trained on GTZAN alone, scored on Emotify.

Every candidate is fitted on GTZAN's clips only (clean, and with ``--augment`` their
degraded copies) and scored on every Emotify clip of the genres GTZAN has (classical,
pop, rock): the *unseen-source* figure, track balanced accuracy by soft vote over each
clip's segments. Candidates: logistic regression (``LogReg``, balanced classes) at fixed
``C`` on musicnn's embedding alone or beside the hand-made features, and musicnn's tag
layer as a prior over the ten classes (:func:`tag_prior`, weights 0-2). Also measured: how
well the largest "outside-genre" tag probability (:data:`OUTSIDE_TAGS`) tells Emotify's
electronic clips from its known-genre ones (AUROC), and where GTZAN's degraded copies
fall on it (a refusal should not fire on them).

Run from the project root once a ``retrain`` with ``--cross-labels`` has filled the cache::

    .venv/bin/python research/explore_unseen_source.py [--augment]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from genre_tagger.pipeline.cache import Cache, default_path
from genre_tagger.plugins import registry
from genre_tagger.selection import balanced_accuracy
from genre_tagger.training.dataset import drop_duplicate_rows
from genre_tagger.training.degrade import DEGRADATIONS
from genre_tagger.training.retrain import Progress, RetrainOptions, cross_set, extract, find_training_clips
from genre_tagger_plugins import musicnn
from genre_tagger_plugins.estimators.logreg import LogReg

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "research" / "results" / "explore_unseen_source"


def soft_track_accuracy(y, proba, classes, groups, keep):
    tracks = np.unique(groups[keep])
    truth, pred = [], []
    for t in tracks:
        rows = keep & (groups == t)
        truth.append(y[rows][0])
        pred.append(classes[int(np.argmax(proba[rows].mean(0)))])
    truth, pred = np.array(truth), np.array(pred)
    recall = {g: float((pred[truth == g] == g).mean()) for g in np.unique(truth)}
    return balanced_accuracy(truth, pred), recall


#: the tags of musicnn's output layer that name each GTZAN genre (classical and reggae have none)
GENRE_TAGS = {"blues": ["blues"], "country": ["country"], "disco": ["funk"], "hiphop": ["Hip-Hop"], "jazz": ["jazz"],
              "metal": ["metal", "heavy metal"], "pop": ["pop", "indie pop", "catchy"],
              "rock": ["rock", "alternative rock", "classic rock", "hard rock", "indie rock", "Progressive rock", "punk"]}


def tag_prior(embedding, classes):
    """Per segment, a log prior over ``classes`` from musicnn's tags (the largest probability
    of a genre's tags; a genre without tags gets the mean), centred: ``[n, n_classes]``."""
    tags = musicnn.tag_probabilities(embedding)
    logs = np.full((len(embedding), len(classes)), np.nan)
    for i, genre in enumerate(classes):
        if genre in GENRE_TAGS:
            logs[:, i] = np.log(np.clip(tags[:, [musicnn.MSD_TAGS.index(t) for t in GENRE_TAGS[genre]]].max(1), 1e-4, 1))
    logs = np.where(np.isnan(logs), np.nanmean(logs, axis=1, keepdims=True), logs)
    return logs - logs.mean(1, keepdims=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    options = RetrainOptions(SHARED / "gtzan" / "genres", Path("/nonexistent"), SHARED / "gtzan" / "splits",
                             cross_labels=SHARED / "emotify" / "labels.csv", jobs=args.jobs)
    progress = Progress(note=print, warn=print)
    reg = registry()
    extractors = [reg.feature_extractor(n) for n in ("gtzan57", "timbre-rhythm", "musicnn")]
    with Cache(default_path()) as cache:
        found = find_training_clips(options, progress)
        clean = extract(found.clips, extractors, cache, args.jobs, None, progress)
        copies = {n: extract(found.clips, extractors, cache, args.jobs, n, progress) for n in DEGRADATIONS} \
            if args.augment else {}
        other = cross_set(options, extractors, cache, {str(g): 1 for g in np.unique(clean.y)}, progress).dataset
    w = musicnn.weights()
    tags = lambda d: 1 / (1 + np.exp(-(d.features["musicnn"] @ w["dense_1/kernel"] + w["dense_1/bias"])))
    known = np.isin(other.y, np.unique(clean.y))
    results = []
    for features in (("musicnn",), ("gtzan57", "timbre-rhythm", "musicnn")):
        train = drop_duplicate_rows(clean.select(features))
        parts = [train] + [c.select(features).subset(np.isin(c.select(features).keys(), train.keys()))
                           for c in copies.values()]
        X = np.vstack([p.X for p in parts])
        y = np.concatenate([p.y for p in parts])
        test = other.select(features)
        for C in (0.001, 0.003, 0.01, 0.03, 0.1, 1.0):
            started = time.perf_counter()
            model = LogReg(C=C).fit(X, y)
            proba = model.predict_proba(test.X)
            score, recall = soft_track_accuracy(other.y, proba, model.classes_, other.groups, known)
            results.append({"features": "+".join(features), "C": C, "augment": args.augment,
                            "unseen_source": score, "recall": recall, "seconds": round(time.perf_counter() - started, 1)})
            print(results[-1], flush=True)
    train = drop_duplicate_rows(clean.select(("musicnn",)))
    model = LogReg(C=0.01).fit(train.X, train.y)
    proba = model.predict_proba(other.select(("musicnn",)).X)
    prior = tag_prior(other.features["musicnn"], model.classes_)
    for weight in (0.0, 0.25, 0.5, 1.0, 2.0):
        combined = np.log(proba + 1e-9) + weight * prior
        combined = np.exp(combined - combined.max(1, keepdims=True))
        score, recall = soft_track_accuracy(other.y, combined / combined.sum(1, keepdims=True), model.classes_,
                                            other.groups, known)
        results.append({"features": "musicnn", "C": 0.01, "tag_prior": weight, "unseen_source": score, "recall": recall})
        print(results[-1], flush=True)
    outside = [musicnn.MSD_TAGS.index(t) for t in musicnn.OUTSIDE_TAGS]
    evidence = tags(other)[:, outside].max(1)
    per_track = {g: evidence[other.groups == g].mean() for g in np.unique(other.groups)}
    track_y = {g: other.y[other.groups == g][0] for g in per_track}
    auroc = roc_auc_score([track_y[g] == "electronic" for g in per_track], list(per_track.values()))
    print("outside-tag AUROC, electronic vs known Emotify:", round(auroc, 3))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps({"rows": results, "outside_auroc": auroc}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
