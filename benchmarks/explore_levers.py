"""Accuracy levers that were measured but not shipped, by the same grouped CV as ``retrain``.

``retrain --ablation`` measures the levers the shipped models use. This script measures
the ones tried and left out, so that the numbers quoted for them can be reproduced:

- **track context**: each segment's row extended with the mean and standard deviation
  of its clip's rows (``logreg`` and LightGBM on gtzan57 + timbre-rhythm);
- **LightGBM on gtzan57 + timbre-rhythm**, alone and in a two-member ensemble with
  ``logreg`` (weights chosen on the other folds, as :func:`genre_tagger.training.ensemble_weights.train`);
- **calibration**: the same ensemble with each member's probabilities temperature-scaled
  first, the temperature fitted (log-loss) on the other folds' out-of-fold predictions;
- **more augmentation** for ``logreg``: beside the degraded copies ``retrain`` ships
  (16 kHz band limit, 32 kbit/s mp3), copies pitch-shifted by +-2 semitones, slowed down
  by 10 % (time stretch, same pitch) and 10 dB quieter, in the training folds only;
- **other classifiers** on the same features: a neural network (:class:`Mlp`, one
  hidden layer of 256 ReLU units, scikit-learn's ``MLPClassifier`` with balanced sample
  weights, the mean of 3 seeds) for three L2 penalties, and an RBF support vector
  machine (:class:`Svm`, balanced class weights) for three ``C``.

Protocol: clean clips only (no augmentation, except in the rows that measure it), exact duplicate
rows dropped, the 5 clip-grouped folds of :func:`genre_tagger.training.crossval.clip_folds`,
scored by track balanced accuracy (majority vote) ± its spread over folds.

Run from the project root (features come from the cache ``retrain`` fills; about 15 min
on 2 idle cores when they are cached, 15 more to make the extra augmented copies)::

    .venv/bin/python benchmarks/explore_levers.py [--data ../shared/data/gtzan/genres] [--cache PATH]
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import librosa
import numpy as np
from scipy.optimize import minimize_scalar

from genre_tagger.models import ensemble
from genre_tagger.pipeline.cache import Cache, default_path
from genre_tagger.plugins import registry
from genre_tagger.training import crossval, dataset as training, degrade, ensemble_weights
from genre_tagger.training.clips import find_clips

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "explore_levers.md"
EXTRACTORS = ("gtzan57", "timbre-rhythm")


def pitch_shifted(y: np.ndarray, n_steps: float) -> np.ndarray:
    """``y`` (22050 Hz) shifted by ``n_steps`` semitones, same length."""
    return degrade._same_length(librosa.effects.pitch_shift(y, sr=22050, n_steps=n_steps, res_type="soxr_hq"), len(y))


def slowed(y: np.ndarray, rate: float) -> np.ndarray:
    """``y`` played at ``rate`` (< 1: slower) without changing its pitch, cut to the same length."""
    return degrade._same_length(librosa.effects.time_stretch(y, rate=rate), len(y))


#: augmentations tried beside retrain's degraded copies. Registered with the degradations
#: when this module is imported, so that the analysis workers (spawned processes import it
#: too) can make them.
EXTRA_AUGMENTATIONS = {
    "pitch+2": functools.partial(pitch_shifted, n_steps=2),
    "pitch-2": functools.partial(pitch_shifted, n_steps=-2),
    "slower-10pct": functools.partial(slowed, rate=0.9),
    "gain-10db": lambda y: y * np.float32(10 ** (-10 / 20)),
}
degrade.DEGRADATIONS.update(EXTRA_AUGMENTATIONS)


class Mlp:
    """Standardise, then the mean of ``n_seeds`` one-hidden-layer ReLU networks
    (scikit-learn's MLPClassifier, Adam, L2 ``alpha``), segments weighted by balanced
    class weights."""

    name = "mlp"
    feature_extractors = EXTRACTORS

    def __init__(self, hidden_units: int = 256, alpha: float = 0.1, n_seeds: int = 3):
        self.hidden_units, self.alpha, self.n_seeds = hidden_units, alpha, n_seeds

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "Mlp":
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import StandardScaler
        from sklearn.utils.class_weight import compute_sample_weight

        self.scaler = StandardScaler().fit(X)
        Z, weights = self.scaler.transform(X), compute_sample_weight("balanced", y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.networks = [MLPClassifier((self.hidden_units,), alpha=self.alpha, random_state=seed)
                             .fit(Z, y, sample_weight=weights) for seed in range(self.n_seeds)]
        self.classes_ = self.networks[0].classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        Z = self.scaler.transform(X)
        return np.mean([network.predict_proba(Z) for network in self.networks], axis=0)


class Svm:
    """Standardise, then scikit-learn's RBF ``SVC`` (balanced class weights); probabilities
    are the softmax of its one-vs-rest decision values (enough for votes and ranks)."""

    name = "svm"
    feature_extractors = EXTRACTORS

    def __init__(self, C: float = 1.0):
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "Svm":
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        self.scaler = StandardScaler().fit(X)
        self.svc = SVC(C=self.C, class_weight="balanced").fit(self.scaler.transform(X), y)
        self.classes_ = self.svc.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        scores = self.svc.decision_function(self.scaler.transform(X))
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


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
        weights = ensemble_weights.best_weights([p[outside] for p in members], dataset.subset(outside), classes)
        combined[~outside] = ensemble.combine([p[~outside] for p in members], weights)
    return crossval.scores_of(dataset, combined, classes, folds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan" / "genres")
    parser.add_argument("--cache", default=None, help="feature cache (default: genre-tagger's)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    plugins = registry()
    started = time.perf_counter()
    extractors = [plugins.feature_extractor(n) for n in EXTRACTORS]
    clips = find_clips(args.data)
    with Cache(args.cache or default_path()) as cache:
        clean = training.build_dataset(clips, extractors, cache, args.jobs)
        copies = {name: training.build_dataset(clips, extractors, cache, args.jobs, degradation=name)
                  for name in degrade.DEGRADATIONS}
    dataset = training.drop_duplicate_rows(clean)
    logreg, lightgbm = plugins.model("logreg").make(), plugins.model("lightgbm").make()
    rows: list[tuple[str, dict]] = []

    def measure(label: str, model_class, data: training.Dataset) -> crossval.CrossValidation:
        cv = crossval.grouped_cv(model_class, data)
        rows.append((label, cv.scores))
        print(f"{label}: {cv.scores['track_balanced_accuracy']:.3f}", flush=True)
        return cv

    logreg_cv = measure("logreg, gtzan57 + timbre-rhythm", logreg, dataset)
    measure("logreg + track context", logreg, with_track_context(dataset))
    lightgbm_cv = measure("LightGBM (1000 trees), gtzan57 + timbre-rhythm", lightgbm, dataset)
    measure("LightGBM (300 trees) + track context", functools.partial(lightgbm, n_estimators=300), with_track_context(dataset))
    shipped = ["band-limited-16k", "mp3-32k"]
    for label, names in [("logreg + degraded copies (as retrain)", shipped),
                         ("logreg + degraded + pitch-shifted copies (+-2 semitones)", [*shipped, "pitch+2", "pitch-2"]),
                         ("logreg + degraded + 10 % slower copies", [*shipped, "slower-10pct"]),
                         ("logreg + degraded + 10 dB quieter copies", [*shipped, "gain-10db"])]:
        cv = crossval.grouped_cv(logreg, dataset, augmented=[copies[name] for name in names])
        rows.append((label, cv.scores))
        print(f"{label}: {cv.scores['track_balanced_accuracy']:.3f}", flush=True)
    for alpha in (0.1, 0.3, 1.0):
        measure(f"MLP (256 ReLU units, alpha {alpha:g}, 3 seeds), gtzan57 + timbre-rhythm", functools.partial(Mlp, alpha=alpha), dataset)
    for C in (1, 3, 10):
        measure(f"SVM (RBF, C {C}), gtzan57 + timbre-rhythm", functools.partial(Svm, C=C), dataset)
    for calibrate in (False, True):
        label = "ensemble logreg + LightGBM" + (", temperature-calibrated members" if calibrate else "")
        rows.append((label, nested_ensemble(dataset, [logreg_cv.proba, lightgbm_cv.proba], logreg_cv.folds, calibrate)))
        print(f"{label}: {rows[-1][1]['track_balanced_accuracy']:.3f}", flush=True)

    lines = [
        "# explore_levers",
        "",
        f"`benchmarks/explore_levers.py`, {(time.perf_counter() - started) / 60:.1f} min; {len(dataset.clips)} clips, "
        f"{len(dataset.y)} segments, clean training data (no augmentation unless a row says so), 5 clip-grouped folds.",
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
