"""Re-weighting predictions from the training set's genre mix to a collection's.

A model trained on GTZAN's mix (100 clips of four genres, about 20 of the others)
carries that mix in its probabilities; a collection has its own. ``evaluate
--adjust-priors`` scores after moving the probabilities to the collection's mix
(Saerens, Latinne & Decaestecker 2002), which it reads off the user's labels, so those
scores are optimistic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from genre_tagger.evaluation.scores import Scores
from genre_tagger.models.predictor import Predictor

#: Added to every class count of the collection before it becomes a prior, so that a
#: genre absent from the labels is made unlikely rather than impossible.
PRIOR_SMOOTHING = 1.0


@dataclass
class PriorShift:
    """Scores after re-weighting each track's mean probabilities by
    ``collection_prior / training_prior`` and taking the most probable class."""

    training_prior: dict[str, float]
    collection_prior: dict[str, float]
    scores: Scores
    changed: int  # tracks whose prediction the shift changed
    smoothing: float = PRIOR_SMOOTHING
    notes: list[str] = field(default_factory=list)


def training_prior(predictor: Predictor) -> tuple[np.ndarray, list[str]]:
    """``(prior [n_classes], notes)``: each class's share of the training clips
    (``clips_per_genre`` of the predictor's training summary), uniform where unrecorded."""
    counts = predictor.training.get("clips_per_genre") or {}
    classes = [str(c) for c in predictor.classes]
    if not all(counts.get(c, 0) > 0 for c in classes):
        return np.full(len(classes), 1 / len(classes)), [
            f"{predictor.name}: the bundle does not record clips per genre for every class; assumed a uniform training prior"
        ]
    values = np.array([counts[c] for c in classes], dtype=float)
    return values / values.sum(), []


def collection_prior(labels: Sequence[str], classes: Sequence[str], smoothing: float = PRIOR_SMOOTHING) -> np.ndarray:
    """Each class's share of ``labels`` after adding ``smoothing`` to every count: ``[n_classes]``."""
    counts = np.array([sum(label == c for label in labels) for c in classes], dtype=float) + smoothing
    return counts / counts.sum()


def shift_priors(proba: np.ndarray, train_prior: np.ndarray, new_prior: np.ndarray) -> np.ndarray:
    """Posteriors under new class priors (Saerens, Latinne & Decaestecker 2002, eq. 2.4).

    ``p'(c|x) ∝ p(c|x) · new_prior[c] / train_prior[c]``, renormalised per row;
    ``proba`` is ``[n_tracks, n_classes]``. A row that would sum to 0 is kept as it was.
    """
    proba = np.asarray(proba, dtype=float)
    weighted = proba * (np.asarray(new_prior) / np.asarray(train_prior))[None, :]
    total = weighted.sum(axis=1, keepdims=True)
    return np.where(total > 0, weighted / np.where(total > 0, total, 1), proba)
