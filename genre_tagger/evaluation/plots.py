"""Plots of an evaluation: the confusion matrices (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from genre_tagger.evaluation.evaluate import Evaluation


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


def plot_confusions(evaluation: Evaluation, path: str | Path) -> Path:
    """Write a PNG with one confusion matrix per model (a second row after the prior
    shift, when computed): cells coloured by the share of their row, labelled with counts."""
    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    models = [m for m in evaluation.models if m.scores is not None]
    if not models:
        raise ValueError("no model could be scored, nothing to plot")
    panels = [[(m.model, m.scores) for m in models]]
    if any(m.prior_shift for m in models):
        panels.append([(f"{m.model}, priors adjusted", m.prior_shift.scores if m.prior_shift else None) for m in models])
    size = max(4.5, 0.6 * max(len(m.scores.confusion_labels) for m in models) + 2.5)
    figure = Figure(figsize=(size * len(models), size * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), len(models), squeeze=False)
    for row, panel in enumerate(panels):
        for column, (title, scores) in enumerate(panel):
            axis = axes[row][column]
            if scores is None:
                axis.set_axis_off()
                continue
            matrix = np.array(scores.confusion, dtype=float)
            shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
            axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
            for (i, j), count in np.ndenumerate(matrix):
                if count:
                    axis.text(j, i, f"{int(count)}", ha="center", va="center",
                              color="white" if shares[i, j] > 0.5 else "black")
            ticks = range(len(scores.confusion_labels))
            axis.set_xticks(ticks, scores.confusion_labels, rotation=45, ha="right")
            axis.set_yticks(ticks, scores.confusion_labels)
            axis.set_xlabel("predicted")
            axis.set_ylabel("true")
            axis.set_title(f"{title}\nbalanced accuracy {scores.balanced_accuracy:.2f}, {scores.n_tracks} tracks")
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path
