"""From segment probabilities to one genre per track.

A track's vote depends on two summaries of its segments' probabilities (:func:`tally`):
how many segments put each class first, and each class's mean probability. :func:`decide`
turns them into a :class:`Vote` by one of :data:`VOTES`; everything else here (and the
cached predictions of :mod:`genre_tagger.models.predictor`, which keep the two summaries)
goes through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genre_tagger.defaults import VOTES  # the ways to vote: majority, soft

__all__ = ["VOTES", "Vote", "decide", "tally", "track_votes", "vote"]


@dataclass(frozen=True)
class Vote:
    """The outcome of a track's vote.

    ``genre`` is the winning class, ``confidence`` its share of the segment votes
    (majority) or its mean probability (soft), 0..1; ``top`` the leading classes with
    their shares or probabilities, best first.
    """

    genre: str
    confidence: float
    top: list[tuple[str, float]]
    n_segments: int


def tally(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(votes int [n_classes], mean_proba [n_classes])`` of ``proba [n_segments, n_classes]``."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[0] == 0:
        raise ValueError(f"expected proba of shape [n_segments>0, n_classes], got {proba.shape}")
    return np.bincount(proba.argmax(axis=1), minlength=proba.shape[1]), proba.mean(axis=0)


def decide(votes: np.ndarray, mean_proba: np.ndarray, classes, method: str = "majority", n_top: int = 3) -> Vote:
    """The vote of a track from its :func:`tally`, by ``method`` (one of :data:`VOTES`)."""
    votes, mean_proba = np.asarray(votes), np.asarray(mean_proba, dtype=float)
    if len(votes) != len(classes) or len(mean_proba) != len(classes):
        raise ValueError(f"expected {len(classes)} votes and mean probabilities, got {len(votes)} and {len(mean_proba)}")
    n_segments = int(votes.sum())
    position = np.arange(len(classes))
    if method == "soft":
        order = np.lexsort((position, -mean_proba))
        top = [(str(classes[i]), float(mean_proba[i])) for i in order[:n_top]]
        return Vote(str(classes[order[0]]), float(mean_proba[order[0]]), top, n_segments)
    if method != "majority":
        raise ValueError(f"unknown vote {method!r}; expected one of {', '.join(VOTES)}")
    # lexsort sorts by the last key first: votes, then mean probability, then class order
    order = np.lexsort((position, -mean_proba, -votes))
    shares = votes / n_segments
    top = [(str(classes[i]), float(shares[i])) for i in order[:n_top] if votes[i] > 0]
    return Vote(str(classes[order[0]]), float(shares[order[0]]), top, n_segments)


def vote(proba: np.ndarray, classes, method: str = "majority") -> Vote:
    """The vote of one track's segments, ``proba [n_segments, n_classes]`` (columns in the
    order of ``classes``)."""
    return decide(*tally(proba), classes, method)


def track_votes(proba: np.ndarray, classes, track_ids: np.ndarray, method: str = "majority") -> tuple[np.ndarray, np.ndarray]:
    """The vote of every track at once, for scoring: ``(unique track ids, winning class per
    track)``; the rows of ``proba [n_segments, n_classes]`` are grouped by ``track_ids``."""
    proba = np.asarray(proba, dtype=float)
    tracks, inverse, counts = np.unique(track_ids, return_inverse=True, return_counts=True)
    votes = np.zeros((len(tracks), proba.shape[1]), dtype=int)
    np.add.at(votes, (inverse, proba.argmax(axis=1)), 1)
    mean_proba = np.zeros((len(tracks), proba.shape[1]))
    np.add.at(mean_proba, inverse, proba)
    mean_proba /= counts[:, None]
    genres = [decide(v, m, classes, method, n_top=1).genre for v, m in zip(votes, mean_proba)]
    return tracks, np.array(genres, dtype=str)
