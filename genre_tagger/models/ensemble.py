"""An ensemble: the weighted mean of several models' probabilities, per segment.

Members may use different features (``knn`` reads ``gtzan57``, ``hog-logreg`` reads
``hog-mel``); every member sees the same segments of a track, so their probabilities can
be averaged row by row before the vote. Its bundle is a ``bundle.json`` that names its
member bundles, folders beside it in the same models folder; how ``retrain`` chooses the
weights is in :mod:`genre_tagger.training.ensemble_weights`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genre_tagger.models.assessment import Assessor
from genre_tagger.models.bundle import META_FILE, Bundle, BundleError, assessor_of, write_metadata

NAME = "ensemble"
KIND = "ensemble"


def combine(probas: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Weighted mean of members' probabilities, each ``[n_segments, n_classes]``."""
    return sum(w * p for w, p in zip(weights, probas))


@dataclass
class Ensemble:
    """A :class:`~genre_tagger.models.predictor.Predictor` over member bundles, used by
    scan and evaluate like a single bundle."""

    members: list[Bundle]
    weights: np.ndarray
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    path: Path | None = None
    checksum: str = ""
    name: str = NAME
    assessor: Assessor | None = None

    @property
    def classes(self) -> np.ndarray:
        return self.members[0].classes

    @property
    def extractors(self) -> list[str]:
        return sorted({name for member in self.members for name in member.extractors})

    def load_model(self) -> None:
        """Make every member's model now (see :meth:`genre_tagger.models.bundle.Bundle.load_model`)."""
        for member in self.members:
            member.load_model()

    def predict_proba(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """``[n_segments, n_classes]`` from ``{extractor name: [n_segments, n_features]}``."""
        return combine([m.predict_proba(features) for m in self.members], self.weights)

    def novelty(self, features: dict[str, np.ndarray]) -> list[float] | None:
        """An ensemble has no novelty detector of its own."""
        return None


def save(directory: str | Path, member_names: list[str], weights: np.ndarray, classes: np.ndarray,
         metrics: dict, training: dict) -> Path:
    """Write an ensemble bundle: only ``bundle.json``, naming its sibling member bundles."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_metadata(directory, {
        "kind": KIND,
        "model": NAME,
        "members": list(member_names),
        "weights": [float(w) for w in weights],
        "classes": [str(c) for c in classes],
        "files": {},
        "training": training,
        "metrics": metrics,
    })
    return directory


def assemble(directory: Path, meta: dict, members: list[Bundle]) -> Ensemble:
    """The ensemble of ``directory`` (its metadata ``meta``, whose members and weights
    :func:`~genre_tagger.models.bundle.read_metadata` checked) over its loaded ``members``,
    checked: one weight per member, the same classes."""
    weights = np.asarray(meta["weights"], dtype=float)
    if len(weights) != len(members):
        raise BundleError(f"{directory}: ensemble weights must be one per member")
    for member in members:
        if [str(c) for c in member.classes] != meta["classes"]:
            raise BundleError(f"{directory}: member {member.name} has other classes than the ensemble")
    digest = hashlib.sha256((directory / META_FILE).read_bytes())
    for member in members:
        digest.update(member.checksum.encode())
    return Ensemble(members, weights, meta.get("metrics", {}), meta.get("training", {}), directory, digest.hexdigest(),
                    assessor=assessor_of(directory, meta))
