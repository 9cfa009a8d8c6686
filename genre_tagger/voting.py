"""From segment probabilities to one genre per track."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Vote:
    """The outcome of a track's vote.

    ``genre`` is the winning class, ``confidence`` its share of the segment votes (0..1),
    ``top`` the leading classes with their shares, best first.
    """

    genre: str
    confidence: float
    top: list[tuple[str, float]]
    n_segments: int


def majority_vote(proba: np.ndarray, classes: np.ndarray, n_top: int = 3) -> Vote:
    """Each segment votes for its most probable class; the most voted class wins.

    ``proba`` is ``[n_segments, n_classes]`` with columns in the order of ``classes``.
    Ties between equally voted classes go to the one with the higher mean probability
    over all segments (then to the first in ``classes``, so the result is deterministic).
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[0] == 0 or proba.shape[1] != len(classes):
        raise ValueError(f"expected proba of shape [n_segments>0, {len(classes)}], got {proba.shape}")
    n_segments = proba.shape[0]
    votes = np.bincount(proba.argmax(axis=1), minlength=len(classes))
    mean_proba = proba.mean(axis=0)
    # lexsort sorts by the last key first: votes, then mean probability, then class order
    order = np.lexsort((np.arange(len(classes)), -mean_proba, -votes))
    shares = votes / n_segments
    top = [(str(classes[i]), float(shares[i])) for i in order[:n_top] if votes[i] > 0]
    winner = order[0]
    return Vote(str(classes[winner]), float(shares[winner]), top, n_segments)


def soft_vote(proba: np.ndarray, classes: np.ndarray, n_top: int = 3) -> Vote:
    """The class with the highest mean probability wins; shares are mean probabilities."""
    proba = np.asarray(proba, dtype=float)
    mean_proba = proba.mean(axis=0)
    order = np.lexsort((np.arange(len(classes)), -mean_proba))
    top = [(str(classes[i]), float(mean_proba[i])) for i in order[:n_top]]
    return Vote(str(classes[order[0]]), float(mean_proba[order[0]]), top, proba.shape[0])


VOTES = ("majority", "soft")


def track_predictions(
    proba: np.ndarray, classes: np.ndarray, track_ids: np.ndarray, vote: str = "majority"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`majority_vote` (or, with ``vote="soft"``, :func:`soft_vote`) of every track
    at once, for evaluation.

    Returns ``(unique_track_ids, predicted_genre_per_track)``; rows of ``proba``
    (``[n_segments, n_classes]``) are grouped by ``track_ids``.
    """
    proba = np.asarray(proba, dtype=float)
    tracks, inverse, counts = np.unique(track_ids, return_inverse=True, return_counts=True)
    votes = np.zeros((len(tracks), len(classes)))
    np.add.at(votes, (inverse, proba.argmax(axis=1)), 1)
    mean_proba = np.zeros_like(votes)
    np.add.at(mean_proba, inverse, proba)
    mean_proba /= counts[:, None]
    if vote == "soft":
        return tracks, np.asarray(classes)[mean_proba.argmax(axis=1)].astype(str)
    # Votes are whole numbers and mean probabilities lie in [0, 1]: adding a fraction of
    # the mean breaks ties without ever overturning a vote; argmax then picks the first class.
    return tracks, np.asarray(classes)[(votes + 0.5 * mean_proba).argmax(axis=1)].astype(str)
