"""Scores of predicted against true genres on a user's collection, by scikit-learn.

Balanced accuracy is the mean recall over the genres present in the labels, macro-F1
the mean F1 over those genres (a genre never predicted has F1 0), as in the model cards
(:mod:`genre_tagger.training.scoring`); the interval of balanced accuracy is a
percentile bootstrap over tracks. :func:`trust` says how far the model's confidences
and its decisions to tag can be trusted on the collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix

from genre_tagger.models.assessment import expected_calibration_error, reliability, risk_coverage
from genre_tagger.selection import balanced_accuracy

#: Resamples of the bootstrap interval of balanced accuracy, and its seed.
N_BOOTSTRAP = 1000
BOOTSTRAP_SEED = 0


@dataclass
class Scores:
    """Scores over ``n_tracks`` tracks.

    ``per_class`` maps each class that is labelled or predicted to ``precision``,
    ``recall``, ``f1`` (``None`` where undefined: precision of a class never predicted,
    recall and F1 of a class never labelled) and ``support``. ``confusion`` is
    ``[n_labels, n_labels]`` with rows the true labels and columns the predicted ones,
    both in the order of ``confusion_labels``.
    """

    n_tracks: int
    accuracy: float
    balanced_accuracy: float
    balanced_accuracy_ci95: tuple[float, float]
    macro_f1: float
    per_class: dict[str, dict]
    confusion_labels: list[str]
    confusion: list[list[int]]


def bootstrap_balanced_accuracy(
    y_true: Sequence, y_pred: Sequence, n_resamples: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """95 % percentile interval of balanced accuracy over tracks resampled with replacement.

    Each resample draws ``n_tracks`` tracks; a class missing from a resample is left out
    of its mean, as in :func:`balanced_accuracy`. Deterministic for a given ``seed``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(y_true), size=(n_resamples, len(y_true)))
    values = [balanced_accuracy(y_true[draw], y_pred[draw]) for draw in draws]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def score(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str],
    n_bootstrap: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED,
) -> Scores:
    """Scores of predicted against true labels, all within ``classes`` (the model's, in order).

    The confusion matrix and ``per_class`` cover the classes labelled or predicted at
    least once, in the order of ``classes``.
    """
    if len(y_true) == 0:
        raise ValueError("no tracks to score")
    seen = set(y_true) | set(y_pred)
    used = [str(c) for c in classes if c in seen]
    matrix = confusion_matrix(y_true, y_pred, labels=used)
    per_class: dict[str, dict] = {}
    for i, genre in enumerate(used):
        hits, support, predicted = int(matrix[i, i]), int(matrix[i].sum()), int(matrix[:, i].sum())
        precision = hits / predicted if predicted else None
        recall = hits / support if support else None
        f1 = None if recall is None else (2 * precision * recall / (precision + recall) if hits else 0.0)
        per_class[genre] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return Scores(
        n_tracks=len(y_true),
        accuracy=float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        balanced_accuracy=balanced_accuracy(y_true, y_pred),
        balanced_accuracy_ci95=bootstrap_balanced_accuracy(y_true, y_pred, n_bootstrap, seed),
        macro_f1=float(np.mean([row["f1"] for row in per_class.values() if row["support"]])),
        per_class=per_class,
        confusion_labels=used,
        confusion=matrix.tolist(),
    )


@dataclass
class Trust:
    """How far a model's confidence and its choice to tag can be trusted on a collection.

    ``ece`` and ``reliability`` compare the calibrated confidences with how often the
    genre was right (see :mod:`genre_tagger.models.assessment`); ``tagged_share`` is the
    share of tracks ``scan`` would tag (the others are reported ``uncertain``) and
    ``tagged_accuracy`` how often those tags are right; ``risk_coverage`` the accuracy of
    the most confident share of tracks, share by share; ``outside_tracks`` the tracks
    labelled with a genre the model does not know and ``outside_untagged`` the share of
    them ``scan`` would leave untagged (``None`` when there are none).
    """

    ece: float
    reliability: list[dict]
    tagged_share: float
    tagged_accuracy: float | None
    risk_coverage: list[dict]
    outside_tracks: int = 0
    outside_untagged: float | None = None


def trust(confidence: Sequence[float], correct: Sequence[bool], tagged: Sequence[bool],
          outside_tagged: Sequence[bool] = ()) -> Trust:
    """The :class:`Trust` of tracks of known genres (their ``confidence``, whether each was
    ``correct``, whether each would be ``tagged``) and of tracks of unknown genres
    (whether each would be tagged)."""
    confidence, correct, tagged = np.asarray(confidence, float), np.asarray(correct, bool), np.asarray(tagged, bool)
    if len(confidence) == 0:
        raise ValueError("no tracks to assess")
    outside = np.asarray(outside_tagged, bool)
    return Trust(
        ece=expected_calibration_error(confidence, correct),
        reliability=reliability(confidence, correct),
        tagged_share=float(tagged.mean()),
        tagged_accuracy=float(correct[tagged].mean()) if tagged.any() else None,
        risk_coverage=risk_coverage(confidence, correct),
        outside_tracks=len(outside),
        outside_untagged=float(1 - outside.mean()) if len(outside) else None,
    )
