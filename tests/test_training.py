"""Training protocol: augmentation stays inside the training folds, degraded test folds,
models reading several extractors, and the ablation's arithmetic."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from genre_tagger.models import bundle, catalogue
from genre_tagger.training import ablation, crossval
from genre_tagger.training.dataset import Dataset
from genre_tagger.plugins import registry


class Spy(BaseEstimator):
    """A model that records the clips and rows it was trained on and predicts uniformly."""

    fits: list[tuple[set, int]] = []

    def fit(self, X, y, groups=None):
        Spy.fits.append((set(groups), len(X)))
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def synthetic(n_clips: int = 20, n_segments: int = 3, offset: float = 0.0) -> Dataset:
    rng = np.random.default_rng(0)
    genres = np.where(np.arange(n_clips) % 2 == 0, "rock", "jazz")
    groups = np.repeat([f"{g}.{i:05d}" for i, g in enumerate(genres)], n_segments)
    return Dataset(
        {"a": rng.normal(size=(n_clips * n_segments, 4)) + offset}, {"a": "1"},
        np.repeat(genres, n_segments), groups, np.tile(np.arange(n_segments), n_clips),
    )


def test_augmented_copies_of_test_clips_never_reach_training_and_degraded_folds_are_scored():
    clean, copy = synthetic(), synthetic(offset=100.0)
    Spy.fits = []
    cv = crossval.grouped_cv(Spy(), clean, augmented=[copy], degraded={"worse": copy})
    for fold, (trained_clips, n_rows) in zip(np.unique(cv.folds), Spy.fits):
        test_clips = set(clean.groups[cv.folds == fold])
        assert not trained_clips & test_clips
        assert n_rows == 2 * (cv.folds != fold).sum()  # every training row and its copy
    robustness = cv.robustness()["worse"]
    assert robustness["n_tracks"] == 20 and robustness["folds"] == len(Spy.fits)
    np.testing.assert_array_equal(cv.degraded["worse"].folds, cv.folds)  # a copy is tested in its clip's fold


def test_a_model_reading_two_extractors_gets_their_columns_side_by_side(tmp_path):
    plugins = registry()
    widths = {name: len(plugins.feature_extractor(name).feature_names) for name in ("gtzan57", "timbre-rhythm")}
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, sum(widths.values())))
    y = np.repeat(["jazz", "rock"], 20)
    X[y == "rock"] += 1
    spec = plugins.model("logreg")
    model = spec.make(C=(0.1,)).fit(X, y, np.repeat(np.arange(10), 4))
    versions = {name: plugins.feature_extractor(name).version for name in spec.feature_extractors}
    directory = bundle.save(bundle.Bundle("logreg", versions, model), tmp_path / "logreg")
    loaded = bundle.load(directory, plugins)
    assert loaded.extractors == ["gtzan57", "timbre-rhythm"]
    features = {"gtzan57": X[:, : widths["gtzan57"]], "timbre-rhythm": X[:, widths["gtzan57"] :]}
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(X))

    meta = json.loads((directory / "bundle.json").read_text())
    meta["feature_extractors"][1]["version"] = "0-old"
    (directory / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError, match="timbre-rhythm version 0-old"):
        bundle.load(directory, plugins)


def test_dataset_select_keeps_rows_and_orders_columns():
    dataset = synthetic()
    dataset.features["b"], dataset.versions["b"] = np.ones((60, 2)), "7"
    picked = dataset.select(("b", "a"))
    assert picked.X.shape == (60, 6) and (picked.X[:, :2] == 1).all() and picked.versions == {"b": "7", "a": "1"}
    assert (picked.keys() == dataset.keys()).all()


def test_ablation_rows_are_paired_differences_over_folds():
    with_scores = {"track_balanced_accuracy": 0.8, "track_balanced_accuracy_folds": [0.7, 0.8, 0.9]}
    without = {"track_balanced_accuracy": 0.7, "track_balanced_accuracy_folds": [0.6, 0.7, 0.8]}
    row = ablation.compare("m", "lever", with_scores, without)
    assert row.delta == pytest.approx(0.1) and row.delta_std == pytest.approx(0.0)
    assert row.as_dict()["without"] == 0.7


def test_the_default_model_is_the_fastest_of_those_tied_at_the_top():
    scores = {"ensemble": 0.789, "logreg": 0.788, "lightgbm": 0.70, "broken": -1.0}
    extractors = {"ensemble": {"a", "b", "c"}, "logreg": {"a", "b"}, "lightgbm": {"a"}, "broken": set()}
    assert catalogue.choose_default(scores, extractors) == "logreg"  # within SCORE_TIE of the best, fewer extractors
    scores["ensemble"] = 0.80
    assert catalogue.choose_default(scores, extractors) == "ensemble"  # clearly better


def test_the_selection_score_weighs_robustness_as_much_as_the_clean_score():
    def metrics(clean, *degraded):
        return {"grouped_cv": {"track_balanced_accuracy": clean},
                "robustness": {f"copy{i}": {"track_balanced_accuracy": d} for i, d in enumerate(degraded)}}

    assert catalogue.selection_score(metrics(0.9, 0.8, 0.7)) == pytest.approx(0.8)
    assert catalogue.selection_score({"grouped_cv": {"track_balanced_accuracy": 0.7}}) == pytest.approx(0.7)
    # better on clean clips, worse on degraded ones: the robust model wins (the shipped case)
    scores = {"ensemble": catalogue.selection_score(metrics(0.882, 0.838, 0.841)),
              "musicnn-logreg": catalogue.selection_score(metrics(0.870, 0.860, 0.854))}
    extractors = {"ensemble": {"a", "b", "c"}, "musicnn-logreg": {"a", "b"}}
    assert catalogue.choose_default(scores, extractors) == "musicnn-logreg"
