"""Plots of an evaluation (matplotlib, the ``plot`` extra): a picture per model, a row of
its confusion matrix (and the one after the prior shift, when computed), its reliability
diagram and its risk-coverage curve."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from genre_tagger.evaluation.evaluate import Evaluation, ModelEvaluation


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (it is the optional ``plot`` extra)."""


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable` with install instructions when matplotlib is missing."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise PlotUnavailable(
            "--plot needs matplotlib, which is not installed: pip install 'genre-tagger[plot]' (or: pip install matplotlib)"
        ) from None


def plot_evaluation(evaluation: Evaluation, path: str | Path) -> list[Path]:
    """Write a PNG per scored model (see the module docstring): ``path`` itself for one,
    ``STEM-MODEL.SUFFIX`` beside it for several (a row each would make one tall strip)."""
    require_matplotlib()
    models = [m for m in evaluation.models if m.scores is not None]
    if not models:
        raise ValueError("no model could be scored, nothing to plot")
    path = Path(path)
    paths = [path] if len(models) == 1 else [path.with_name(f"{path.stem}-{m.model}{path.suffix}") for m in models]
    for model, model_path in zip(models, paths):
        _plot_model(model).savefig(model_path, dpi=110)
    return paths


def _plot_model(model: ModelEvaluation):
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    matrices = 2 if model.prior_shift else 1
    size = max(4.5, 0.55 * len(model.scores.confusion_labels) + 2.5)
    widths = [size] * matrices + [4.5, 4.5]
    figure = Figure(figsize=(sum(widths), size + 0.8), layout="constrained")
    row = figure.subplots(1, len(widths), squeeze=False, width_ratios=widths)[0]
    image = _confusion(row[0], model.model, model.scores)
    if matrices == 2:
        _confusion(row[1], f"{model.model}, priors adjusted", model.prior_shift.scores)
    figure.colorbar(image, ax=row[:matrices].tolist(), shrink=0.8, label="share of the true genre's tracks")
    _reliability(row[matrices], model)
    _risk_coverage(row[matrices + 1], model)
    return figure


def _confusion(axis, title: str, scores):
    matrix = np.array(scores.confusion, dtype=float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            axis.text(j, i, f"{int(count)}", ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
    ticks = range(len(scores.confusion_labels))
    axis.set_xticks(ticks, scores.confusion_labels, rotation=45, ha="right")
    axis.set_yticks(ticks, scores.confusion_labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("your label")
    axis.set_title(f"{title}\nbalanced accuracy {scores.balanced_accuracy:.2f}, {scores.n_tracks} tracks")
    return image


def _reliability(axis, model: ModelEvaluation) -> None:
    """Accuracy against confidence per bin, the marker's area the bin's tracks."""
    bins = model.trust.reliability
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    axis.scatter([b["confidence"] for b in bins], [b["accuracy"] for b in bins],
                 s=[20 + 200 * b["tracks"] / max(len(model.tracks), 1) for b in bins], color="tab:blue", zorder=3)
    axis.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], color="tab:blue", label="this model")
    axis.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="confidence", ylabel="share right",
             title=f"reliability (ECE {model.trust.ece:.3f})")
    axis.legend(loc="upper left")


def _risk_coverage(axis, model: ModelEvaluation) -> None:
    """Accuracy of the most confident tracks against their share; the model's threshold marked."""
    order = np.argsort([-t.confidence for t in model.tracks])
    correct = np.array([model.tracks[i].predicted == model.tracks[i].label for i in order], float)
    share = np.arange(1, len(correct) + 1) / len(correct)
    axis.plot(share, np.cumsum(correct) / np.arange(1, len(correct) + 1), color="tab:blue")
    trust = model.trust
    if trust.tagged_accuracy is not None:
        axis.scatter([trust.tagged_share], [trust.tagged_accuracy], color="tab:red", zorder=3,
                     label=f"tagged: {trust.tagged_share:.0%}, right {trust.tagged_accuracy:.0%}")
        axis.legend(loc="lower left")
    axis.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="share of tracks tagged (most confident first)",
             ylabel="share of them right", title="risk-coverage")
