"""What scan and evaluate predict with, and what a prediction of one track holds.

A :class:`Predictor` turns the feature rows of a track's segments into class
probabilities per segment: a single model's :class:`~genre_tagger.models.bundle.Bundle`
and an :class:`~genre_tagger.models.ensemble.Ensemble` of several both are one. A
:class:`TrackPrediction` is one track's outcome, as the cache stores it (JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from genre_tagger.models.assessment import LOW_CONFIDENCE, Assessment, Assessor
from genre_tagger.models.voting import Vote, decide, tally

__all__ = ["Predictor", "TrackPrediction", "UNKNOWN", "predict_track"]

#: the genre reported for a track that gets none (silent, uncertain)
UNKNOWN = "unknown"


@runtime_checkable
class Predictor(Protocol):
    """A trained model as scan and evaluate use it.

    ``name`` and ``checksum`` identify it in caches; ``classes`` are the genres it
    predicts; ``extractors`` the feature extractors whose rows :meth:`predict_proba`
    reads; ``metrics`` and ``training`` what ``retrain`` recorded; ``assessor`` (or
    ``None``) calibrates its confidence and says when a track is uncertain, from the
    distances :meth:`novelty` measures. :meth:`load_model` makes the model now (it is
    otherwise made on first use), so a model that cannot be made fails once, before any
    file.
    """

    name: str
    checksum: str
    metrics: dict
    training: dict
    assessor: Assessor | None

    @property
    def classes(self) -> np.ndarray: ...

    @property
    def extractors(self) -> list[str]: ...

    def load_model(self) -> None: ...

    def predict_proba(self, features: dict[str, np.ndarray]) -> np.ndarray: ...

    def novelty(self, features: dict[str, np.ndarray]) -> list[float] | None: ...


@dataclass
class TrackPrediction:
    """One track's prediction: its segments' :func:`~genre_tagger.models.voting.tally`
    and what was analysed.

    ``votes`` and ``mean_proba`` map each class to the number of segments that put it
    first and to its mean probability (empty for a ``silent`` track); ``novelty`` how
    unlike the known music its features are (see
    :class:`~genre_tagger.models.assessment.Novelty`; ``None`` for a model without);
    ``segments`` is the number of analysed segments, ``duration_s`` the decoded duration,
    ``stamp`` the file's ``(size, mtime_ns)`` when it was analysed.
    """

    segments: int
    votes: dict[str, int] = field(default_factory=dict)
    mean_proba: dict[str, float] = field(default_factory=dict)
    duration_s: float | None = None
    stamp: tuple[int, int] | None = None
    silent: bool = False
    novelty: list[float] | None = None

    FORMAT = 3  # of to_json; older cache entries are analysed again

    def decide(self, method: str = "majority") -> Vote:
        """The track's :class:`~genre_tagger.models.voting.Vote` by ``method``;
        :data:`UNKNOWN` with confidence 0 for a silent track."""
        if self.silent or not self.votes:
            return Vote(UNKNOWN, 0.0, [], self.segments)
        classes = list(self.votes)
        return decide([self.votes[c] for c in classes], [self.mean_proba[c] for c in classes], classes, method)

    def assess(self, predictor: Predictor, vote: Vote, min_confidence: float | None = None) -> Assessment:
        """How far to trust ``vote`` (this track's decision) with ``predictor``'s assessor;
        without one, its confidence is the vote's own, below ``min_confidence`` uncertain."""
        if predictor.assessor is None:
            low = vote.confidence < (min_confidence or 0.0)
            return Assessment(vote.confidence, (), LOW_CONFIDENCE if low else None)
        return predictor.assessor.assess(self.mean_proba.get(vote.genre, 0.0), self.novelty, min_confidence)

    def genres(self, predictor: Predictor, vote: Vote, n: int = 1, margin: float = 0.15,
               min_confidence: float | None = None) -> list[str]:
        """The track's genres, at most ``n``: the vote's, then those whose mean probability
        is within ``margin`` of its and that are themselves likely enough (their
        confidence, calibrated as the winner's is, at least the threshold), most
        probable first."""
        winner = self.mean_proba.get(vote.genre, 0.0)
        others = sorted((g for g in self.mean_proba if g != vote.genre), key=lambda g: -self.mean_proba[g])
        chosen = [vote.genre]
        for genre in others[: max(n - 1, 0)]:
            score = self.mean_proba[genre]
            if score < winner - margin or score <= 0:
                break
            likely = (predictor.assessor.assess(score, None, min_confidence).reason is None if predictor.assessor
                      else score >= (min_confidence or 0.0))
            if not likely:
                break
            chosen.append(genre)
        return chosen

    def to_json(self) -> dict[str, Any]:
        return {"format": self.FORMAT, "segments": self.segments, "votes": self.votes, "mean_proba": self.mean_proba,
                "duration_s": self.duration_s, "stamp": list(self.stamp) if self.stamp else None, "silent": self.silent,
                "novelty": self.novelty}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrackPrediction | None:
        """The prediction :meth:`to_json` stored, or ``None`` for an entry of another format."""
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            return None
        stamp, novelty = data.get("stamp"), data.get("novelty")
        return cls(int(data["segments"]), {str(k): int(v) for k, v in data["votes"].items()},
                   {str(k): float(v) for k, v in data["mean_proba"].items()}, data.get("duration_s"),
                   tuple(stamp) if stamp else None, bool(data.get("silent")),
                   [float(v) for v in novelty] if novelty is not None else None)


def predict_track(predictor: Predictor, features: dict[str, np.ndarray]) -> TrackPrediction:
    """The prediction of one track from its features, ``{extractor name: [n_segments, n_features]}``
    for the extractors the predictor reads."""
    votes, mean_proba = tally(predictor.predict_proba(features))
    classes = [str(c) for c in predictor.classes]
    return TrackPrediction(int(votes.sum()), dict(zip(classes, votes.tolist())), dict(zip(classes, mean_proba.tolist())),
                           novelty=predictor.novelty(features))
