"""Scores of segment and track predictions, and the honest ways of splitting GTZAN."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

from genre_tagger.voting import track_predictions


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, macro-F1 and per-class recall of label arrays."""
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = np.isin(labels, y_true)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels[present], average="macro", zero_division=0)),
        "recall": {str(c): float(r) for c, r, p in zip(labels, recall, present) if p},
    }


def track_labels(y_true: np.ndarray, groups: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """The genre of each of ``tracks``: that of its first row (``groups`` gives each row's
    track, ``y_true`` its genre)."""
    first_row = {g: i for i, g in reversed(list(enumerate(groups)))}
    return np.array([y_true[first_row[t]] for t in tracks]).astype(str)


def segment_and_track_scores(
    y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, groups: np.ndarray
) -> dict:
    """Scores per segment and per track: the majority vote over the segments of each
    clip, and (``*_soft``) the soft vote, the class of highest mean probability.

    ``y_true`` and ``groups`` give the genre and clip of each row of ``proba``
    (``[n_segments, n_classes]``, columns in the order of ``classes``).
    """
    y_true = np.asarray(y_true).astype(str)
    segment_pred = classes[proba.argmax(axis=1)]
    tracks, track_pred = track_predictions(proba, classes, groups)
    track_true = track_labels(y_true, groups, tracks)
    segment = classification_scores(y_true, segment_pred, classes)
    track = classification_scores(track_true, track_pred, classes)
    soft = classification_scores(track_true, track_predictions(proba, classes, groups, vote="soft")[1], classes)
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


def summarise_folds(fold_scores: list[dict]) -> dict:
    """Mean of each numeric score over folds, with its standard deviation (``<name>_std``)."""
    summary: dict = {"folds": len(fold_scores)}
    for key, value in fold_scores[0].items():
        if isinstance(value, (int, float)):
            values = np.array([f[key] for f in fold_scores], dtype=float)
            summary[key] = float(values.mean()) if not key.startswith("n_") else int(values.sum())
            if not key.startswith("n_"):
                summary[f"{key}_std"] = float(values.std())
    return summary
