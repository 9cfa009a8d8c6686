"""Nested grouped CV: lever choices made inside each outer fold's training clips only."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from genre_tagger.training import nested
from genre_tagger.training.crossval import clip_folds
from genre_tagger.training.dataset import Dataset

GENRES = np.array(["blues", "jazz", "rock"])


class SpyModel(ClassifierMixin, BaseEstimator):
    """A plain logistic regression that records the clips of every training set."""

    fits: list[set] = []

    def __init__(self, class_weight: str | None = "balanced"):
        self.class_weight = class_weight

    def fit(self, X, y, groups=None):
        SpyModel.fits.append(set(groups))
        self.model_ = LogisticRegression(class_weight=self.class_weight, max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def make_dataset(n_clips: int = 30, segments: int = 4, seed: int = 0) -> Dataset:
    """Clips of three genres; ``signal`` tells the genre apart, ``noise`` does not."""
    rng = np.random.default_rng(seed)
    y = np.repeat(GENRES[np.arange(n_clips) % 3], segments)
    groups = np.repeat([f"clip{i:02d}" for i in range(n_clips)], segments)
    signal = rng.normal(size=(len(y), 2)) + 3 * (np.searchsorted(GENRES, y)[:, None] == [0, 1])
    noise = rng.normal(size=(len(y), 3))
    return Dataset({"noise": noise, "signal": signal}, {"noise": "1", "signal": "1"}, y, groups,
                   np.tile(np.arange(segments), n_clips))


def test_no_fit_of_an_outer_fold_sees_its_test_clips():
    dataset = make_dataset()
    SpyModel.fits.clear()
    result = nested.nested_cv(SpyModel(), dataset, n_folds=3, inner_folds=2)
    folds = clip_folds(dataset, 3)
    # per outer fold: 2 feature sets x 2 class weights, each a 2-fold inner CV, then one outer fit
    per_fold = 2 * 2 * 2 + 1
    assert len(SpyModel.fits) == 3 * per_fold
    for index, clips in enumerate(SpyModel.fits):
        test_clips = set(dataset.groups[folds == index // per_fold])
        assert clips and not clips & test_clips
    assert result["folds"] == 3 and len(result["chosen"]) == 3
    assert result["configurations"] == 2 * 2 * 2  # x two votes


def test_the_informative_features_are_chosen_and_scored_on_unseen_clips():
    result = nested.nested_cv(SpyModel(), make_dataset(), n_folds=3, inner_folds=2)
    assert all(c["configuration"].startswith("noise + signal") for c in result["chosen"])
    assert result["track_balanced_accuracy"] > 0.9
    assert result["track_balanced_accuracy_std"] == pytest.approx(np.std(result["track_balanced_accuracy_folds"]))


def test_the_first_extractor_alone_is_chosen_when_the_others_only_add_noise():
    dataset = make_dataset()
    swapped = Dataset({"signal": dataset.features["signal"], "noise": dataset.features["noise"] * 50},
                      dataset.versions, dataset.y, dataset.groups, dataset.segment)
    result = nested.nested_cv(SpyModel(), swapped, n_folds=3, inner_folds=2)
    assert result["track_balanced_accuracy"] > 0.9
    assert any(c["configuration"].startswith("signal,") for c in result["chosen"])


def test_configurations_cover_only_the_levers_a_model_has():
    dataset = make_dataset()
    copies = [dataset]  # stands for a degraded copy
    assert len(nested.configurations(SpyModel(), dataset, copies)) == 2 * 2 * 2 * 2

    class NoWeights(SpyModel):
        def __init__(self):
            super().__init__(None)

    single = dataset.select(("signal",))
    configurations = nested.configurations(NoWeights(), single, [])
    assert [c.vote for c in configurations] == ["majority", "soft"]
    assert configurations[0] == nested.Configuration(("signal",), False, None, "majority")
