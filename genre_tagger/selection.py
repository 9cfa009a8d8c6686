"""Model selection by grouped folds: one way to split, one score to choose by.

Every cross-validation in genre-tagger -- ``retrain``'s outer folds, the nested CV's inner
ones, and the choices models make inside ``fit`` (KNN's ``k``, logistic regression's
``C``) -- splits with :class:`GroupedFolds`: whole clips (or tracks) are dealt to folds,
stratified by genre, so the segments of one clip never sit on both sides. And every
choice is made by :func:`track_balanced_accuracy`: the balanced accuracy of the tracks'
votes, the score the model cards report.

Folds depend only on the clips and their genres, so two datasets with other features over
the same clips get the same folds.

:class:`LeaveOneSourceOut` is the same interface over where music comes from: each
labelled source (a data set, a label file of one's own) is in turn the test set of models
trained without any of its clips -- the *unseen-source* figure that ``retrain`` chooses by,
since a source's recording chain is something a model can learn and a user's library
does not share.
"""

from __future__ import annotations

import warnings
from typing import Iterator

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold

from genre_tagger.models.voting import track_votes

__all__ = ["GroupedFolds", "LeaveOneSourceOut", "balanced_accuracy", "track_balanced_accuracy", "track_labels"]


class GroupedFolds:
    """A scikit-learn splitter that keeps groups (clips) whole and stratifies them by label.

    Each group counts once, with the label of its first row; groups are dealt to
    ``n_folds`` folds by ``StratifiedKFold`` (shuffled with ``seed``). With fewer groups
    of the largest label than ``n_folds``, there are that many folds (at least 2).
    """

    def __init__(self, n_folds: int = 5, seed: int = 0):
        self.n_folds = n_folds
        self.seed = seed

    def folds(self, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The fold of each row, ``int [n_rows]``."""
        y, groups = np.asarray(y).astype(str), np.asarray(groups)
        clips, first = np.unique(groups, return_index=True)
        genres = y[first]
        n_folds = max(2, min(self.n_folds, int(np.unique(genres, return_counts=True)[1].max())))
        clip_fold = np.empty(len(clips), dtype=int)
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=self.seed)
        with warnings.catch_warnings():  # a genre with fewer clips than folds is fine here
            warnings.simplefilter("ignore", UserWarning)
            for fold, (_, test) in enumerate(splitter.split(clips, genres)):
                clip_fold[test] = fold
        return clip_fold[np.searchsorted(clips, groups)]

    def split(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(train rows, test rows)`` per fold, as scikit-learn's splitters yield them."""
        folds = self.folds(y, groups)
        for fold in np.unique(folds):
            yield np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.n_folds if y is None else len(np.unique(self.folds(y, groups)))


class LeaveOneSourceOut:
    """A scikit-learn splitter whose groups are sources: each source in turn is the test
    set, the rows of every other source the training set."""

    def split(self, X: np.ndarray, y: np.ndarray | None, groups: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(train rows, test rows)`` per source, in sorted order of the sources."""
        groups = np.asarray(groups)
        for source in np.unique(groups):
            yield np.flatnonzero(groups != source), np.flatnonzero(groups == source)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return len(np.unique(groups))


def track_labels(y: np.ndarray, groups: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """The label of each of ``tracks``: that of its first row (``groups`` gives each row's
    track, ``y`` its label)."""
    first_row = {g: i for i, g in reversed(list(enumerate(groups)))}
    return np.array([y[first_row[t]] for t in tracks]).astype(str)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the labels present in ``y_true``; predictions of other labels (music
    of other genres, a resample without some genre) count against precision only, quietly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", "A single label was found")
        return float(balanced_accuracy_score(y_true, y_pred))


def track_balanced_accuracy(y: np.ndarray, proba: np.ndarray, classes: np.ndarray, groups: np.ndarray,
                            vote: str = "majority") -> float:
    """Balanced accuracy of the tracks' votes: ``proba [n_segments, n_classes]`` (columns in
    the order of ``classes``), ``y`` and ``groups`` the label and track of each row."""
    tracks, predicted = track_votes(proba, classes, groups, vote)
    return balanced_accuracy(track_labels(np.asarray(y).astype(str), groups, tracks), predicted)
