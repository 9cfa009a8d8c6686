"""Scores of segment and track predictions, as ``retrain`` records them in metrics and
model cards (scikit-learn's metrics, over the votes of :mod:`genre_tagger.models.voting`)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score

from genre_tagger.models.voting import track_votes
from genre_tagger.selection import balanced_accuracy, track_labels

#: scores whose spread across folds :func:`scores_by_fold` reports (``<name>_std``)
SPREAD_KEYS = ("segment_accuracy", "track_accuracy", "track_balanced_accuracy", "track_macro_f1",
               "track_balanced_accuracy_soft")
#: scores whose per-fold values it lists (``<name>_folds``), for the ablation's paired differences
FOLD_KEYS = ("track_balanced_accuracy", "track_balanced_accuracy_soft")


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, macro-F1 and per-class recall of label arrays."""
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = np.isin(labels, y_true)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels[present], average="macro", zero_division=0)),
        "recall": {str(c): float(r) for c, r, p in zip(labels, recall, present) if p},
    }


def segment_and_track_scores(
    y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, groups: np.ndarray
) -> dict:
    """Scores per segment and per track: the majority vote over the segments of each
    clip, and (``*_soft``) the soft vote, the class of highest mean probability.

    ``y_true`` and ``groups`` give the genre and clip of each row of ``proba``
    (``[n_segments, n_classes]``, columns in the order of ``classes``).
    """
    y_true = np.asarray(y_true).astype(str)
    classes = np.asarray(classes).astype(str)
    segment_pred = classes[proba.argmax(axis=1)]
    tracks, track_pred = track_votes(proba, classes, groups)
    track_true = track_labels(y_true, groups, tracks)
    segment = classification_scores(y_true, segment_pred, classes)
    track = classification_scores(track_true, track_pred, classes)
    soft = classification_scores(track_true, track_votes(proba, classes, groups, "soft")[1], classes)
    return {
        "segment_accuracy": segment["accuracy"],
        "segment_balanced_accuracy": segment["balanced_accuracy"],
        "track_accuracy": track["accuracy"],
        "track_balanced_accuracy": track["balanced_accuracy"],
        "track_macro_f1": track["macro_f1"],
        "track_recall": track["recall"],
        "track_accuracy_soft": soft["accuracy"],
        "track_balanced_accuracy_soft": soft["balanced_accuracy"],
        "track_macro_f1_soft": soft["macro_f1"],
        "n_segments": int(len(y_true)),
        "n_tracks": int(len(tracks)),
    }


def scores_by_fold(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, groups: np.ndarray,
                   folds: np.ndarray) -> dict:
    """Scores of pooled out-of-fold ``proba``, with the spread across ``folds`` (``*_std``)
    and the per-fold values of :data:`FOLD_KEYS` (``*_folds``)."""
    scores = segment_and_track_scores(y_true, proba, classes, groups)
    per_fold = [segment_and_track_scores(y_true[folds == f], proba[folds == f], classes, groups[folds == f])
                for f in np.unique(folds)]
    for key in SPREAD_KEYS:
        scores[f"{key}_std"] = float(np.std([fold[key] for fold in per_fold]))
    for key in FOLD_KEYS:
        scores[f"{key}_folds"] = [float(fold[key]) for fold in per_fold]
    scores["folds"] = int(len(per_fold))
    return scores
