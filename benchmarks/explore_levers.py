"""Accuracy levers that were measured but not shipped, by the same grouped CV as ``retrain``.

``retrain --ablation`` measures the levers the shipped models use. This script measures
the ones tried and left out, so that the numbers quoted for them can be reproduced:

- **track context**: each segment's row extended with the mean and standard deviation
  of its clip's rows (``logreg`` and LightGBM on gtzan57 + timbre-rhythm);
- **LightGBM on gtzan57 + timbre-rhythm**, alone and in a two-member ensemble with
  ``logreg`` (weights chosen on the other folds, as :func:`genre_tagger.ensemble.train`);
- **calibration**: the same ensemble with each member's probabilities temperature-scaled
  first, the temperature fitted (log-loss) on the other folds' out-of-fold predictions.

Protocol: clean clips only (no augmentation, which ``retrain`` measures), exact duplicate
rows dropped, the 5 clip-grouped folds of :func:`genre_tagger.training.clip_folds`,
scored by track balanced accuracy (majority vote) ± its spread over folds.

Run from the project root (features come from the cache ``retrain`` fills; about 5 min
on 2 idle cores when they are cached)::

    .venv/bin/python benchmarks/explore_levers.py [--data ../shared/data/gtzan/genres] [--cache PATH]
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from genre_tagger import ensemble, training
from genre_tagger.cache import Cache, default_path
from genre_tagger.dataset import find_clips
from genre_tagger.plugins import registry

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "explore_levers.md"
EXTRACTORS = ("gtzan57", "timbre-rhythm")


def with_track_context(dataset: training.Dataset) -> training.Dataset:
    """``dataset`` with a ``context`` block: per row, the mean and std of its clip's rows."""
    X = dataset.X
    context = np.empty((len(X), 2 * X.shape[1]))
    for clip in dataset.clips:
        rows = dataset.groups == clip
        context[rows] = np.concatenate([X[rows].mean(axis=0), X[rows].std(axis=0)])
    features = dict(dataset.features, context=context)
    return training.Dataset(features, dict(dataset.versions, context="-"), dataset.y, dataset.groups, dataset.segment)


def temperature_scaled(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``log(proba) / temperature``, row by row."""
    logits = np.log(np.clip(proba, 1e-12, 1)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fitted_temperature(proba: np.ndarray, y_index: np.ndarray) -> float:
    """The temperature minimising the log-loss of ``proba`` against class indices ``y_index``."""
    def log_loss(t: float) -> float:
        return -np.log(np.clip(temperature_scaled(proba, t)[np.arange(len(proba)), y_index], 1e-12, 1)).mean()

    return float(minimize_scalar(log_loss, bounds=(0.05, 20), method="bounded").x)


def nested_ensemble(dataset: training.Dataset, probas: list[np.ndarray], folds: np.ndarray, calibrate: bool) -> dict:
    """Scores of the weighted mean of ``probas``, weights (and temperatures) chosen on the other folds."""
    classes = np.unique(dataset.y)
    y_index = np.searchsorted(classes, dataset.y)
    combined = np.zeros_like(probas[0])
    for fold in np.unique(folds):
        outside = folds != fold
        members = probas
        if calibrate:
            members = [temperature_scaled(p, fitted_temperature(p[outside], y_index[outside])) for p in probas]
        weights = ensemble.best_weights([p[outside] for p in members], dataset.subset(outside), classes)
        combined[~outside] = ensemble.combine([p[~outside] for p in members], weights)
    return training.scores_by_fold(dataset, combined, classes, folds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan" / "genres")
    parser.add_argument("--cache", default=None, help="feature cache (default: genre-tagger's)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    plugins = registry()
    started = time.perf_counter()
    with Cache(args.cache or default_path()) as cache:
        clean = training.build_dataset(find_clips(args.data), [plugins.feature_extractor(n) for n in EXTRACTORS],
                                       cache, args.jobs)
    dataset = training.drop_duplicate_rows(clean)
    logreg, lightgbm = plugins.model("logreg"), plugins.model("lightgbm")
    rows: list[tuple[str, dict]] = []

    def measure(label: str, model_class, data: training.Dataset) -> training.CrossValidation:
        cv = training.grouped_cv(model_class, data)
        rows.append((label, cv.scores))
        print(f"{label}: {cv.scores['track_balanced_accuracy']:.3f}", flush=True)
        return cv

    logreg_cv = measure("logreg, gtzan57 + timbre-rhythm", logreg, dataset)
    measure("logreg + track context", logreg, with_track_context(dataset))
    lightgbm_cv = measure("LightGBM (1000 trees), gtzan57 + timbre-rhythm", lightgbm, dataset)
    measure("LightGBM (300 trees) + track context", functools.partial(lightgbm, n_estimators=300), with_track_context(dataset))
    for calibrate in (False, True):
        label = "ensemble logreg + LightGBM" + (", temperature-calibrated members" if calibrate else "")
        rows.append((label, nested_ensemble(dataset, [logreg_cv.proba, lightgbm_cv.proba], logreg_cv.folds, calibrate)))
        print(f"{label}: {rows[-1][1]['track_balanced_accuracy']:.3f}", flush=True)

    lines = [
        "# explore_levers",
        "",
        f"`benchmarks/explore_levers.py`, {(time.perf_counter() - started) / 60:.1f} min; {len(dataset.clips)} clips, "
        f"{len(dataset.y)} segments, clean training data (no augmentation), 5 clip-grouped folds.",
        "",
        "| configuration | track bal. acc | soft vote | track acc |",
        "|---|---|---|---|",
    ]
    for label, scores in rows:
        lines.append(f"| {label} | {scores['track_balanced_accuracy']:.3f} ± {scores['track_balanced_accuracy_std']:.3f} "
                     f"| {scores['track_balanced_accuracy_soft']:.3f} | {scores['track_accuracy']:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
