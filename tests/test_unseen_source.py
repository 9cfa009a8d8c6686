"""Choices judged on a source the model never saw (#31): the leave-one-source-out splitter,
the unseen-source figure of retrain's scoring, and musicnn's tag layer as the evidence of
music outside the known genres."""

from __future__ import annotations

import numpy as np

from genre_tagger.models.assessment import Novelty, OutsideLayer
from genre_tagger.selection import LeaveOneSourceOut
from genre_tagger.training.crossval import CrossSet, train_and_score
from genre_tagger.training.dataset import Dataset
from genre_tagger_plugins import musicnn
from genre_tagger_plugins.estimators.logreg import LogReg


def test_leave_one_source_out_tests_each_source_on_a_model_of_the_others():
    sources = np.array(["a", "b", "a", "c", "b"])
    splits = list(LeaveOneSourceOut().split(np.zeros((5, 1)), None, sources))
    assert LeaveOneSourceOut().get_n_splits(groups=sources) == 3 == len(splits)
    for train, test in splits:
        assert len(set(sources[test])) == 1 and sources[test[0]] not in set(sources[train])
        assert sorted(np.concatenate([train, test])) == list(range(5))


def _dataset(rng, genres, clips_per_genre, shift, prefix):
    y, groups, rows = [], [], []
    for g, genre in enumerate(genres):
        for c in range(clips_per_genre):
            centre = np.eye(4)[g] * 3 + shift
            rows.append(centre + rng.normal(0, 0.5, (4, 4)))
            y += [genre] * 4
            groups += [f"{prefix}{genre}{c}"] * 4
    X = np.vstack(rows)
    return Dataset({"f": X}, {"f": "1"}, np.array(y), np.array(groups), np.tile(np.arange(4), len(rows)))


def test_each_source_is_scored_by_a_model_that_never_saw_it():
    """Two sources of other music, trained on: each is predicted by a model trained on the
    training folder and the *other* source, never its own. A source whose recording chain
    (a shift of every column) the training folder lacks scores lower unseen than in-source."""
    rng = np.random.default_rng(0)
    folder = _dataset(rng, ["a", "b", "c"], 10, 0.0, "t")
    near = _dataset(rng, ["a", "b"], 10, 0.2, "n")
    far = _dataset(rng, ["a", "b"], 10, 2.5, "f")
    rows = Dataset({"f": np.vstack([near.X, far.X])}, {"f": "1"}, np.concatenate([near.y, far.y]),
                   np.concatenate([near.groups, far.groups]), np.concatenate([near.segment, far.segment]))
    sources = np.array(["near"] * len(near.y) + ["far"] * len(far.y))
    cross = CrossSet.of(rows, {"a": 40, "b": 40, "c": 40}, 5, train=True, sources=sources)
    trained = train_and_score(LogReg(C=1.0), folder, None, cross=cross, leaky=False)
    unseen = trained.metrics["unseen_source"]
    assert unseen["sources"] == ["far", "near"]
    assert 0 <= unseen["track_balanced_accuracy"] <= 1
    assert trained.cv.unseen.proba.shape == (len(rows.y), 3)
    # the in-source figure (other clips of the same source trained the fold models) is the higher
    assert trained.metrics["cross_dataset"]["track_balanced_accuracy"] >= unseen["track_balanced_accuracy"]


def test_without_training_on_other_music_the_unseen_figure_is_the_shipped_models_own():
    rng = np.random.default_rng(1)
    folder = _dataset(rng, ["a", "b"], 8, 0.0, "t")
    other = _dataset(rng, ["a", "b"], 6, 0.3, "o")
    cross = CrossSet.of(other, {"a": 32, "b": 32}, 5, train=False)
    trained = train_and_score(LogReg(C=1.0), folder, None, cross=cross, leaky=False)
    np.testing.assert_allclose(trained.cv.unseen.proba, trained.model.predict_proba(other.X))


def test_tag_probabilities_are_musicnns_own_output_layer():
    embedding = np.random.default_rng(2).normal(size=(3, musicnn.N_UNITS))
    w = musicnn.weights()
    expected = 1 / (1 + np.exp(-(embedding @ w["dense_1/kernel"] + w["dense_1/bias"])))
    tags = musicnn.tag_probabilities(embedding)
    assert tags.shape == (3, len(musicnn.MSD_TAGS)) == (3, 50)
    np.testing.assert_allclose(tags, expected, rtol=1e-6)


def test_the_outside_genre_layer_leaves_out_the_models_own_genres_and_round_trips():
    extractor = musicnn.Musicnn()
    kernel, bias = extractor.outside_genre_layer(["blues", "rock"])
    assert kernel.shape == (musicnn.N_UNITS, len(musicnn.OUTSIDE_TAGS)) and bias.shape == (len(musicnn.OUTSIDE_TAGS),)
    fewer, _ = extractor.outside_genre_layer(["electronic", "ambient"])  # an owner's own electronic genre
    assert fewer.shape[1] == len(musicnn.OUTSIDE_TAGS) - 2
    rng = np.random.default_rng(3)
    X = np.hstack([rng.normal(size=(40, 5)), rng.normal(size=(40, musicnn.N_UNITS))])
    y = np.repeat(["blues", "rock"], 20)
    layer = OutsideLayer(5, 5 + musicnn.N_UNITS, kernel, bias)
    detector = Novelty.fit(X, y, [(0, X.shape[1]), (0, 5)], layer)
    distances = detector.distances(X)
    tags = musicnn.tag_probabilities(X[:, 5:])
    outside = [musicnn.MSD_TAGS.index(t) for t in musicnn.OUTSIDE_TAGS]
    np.testing.assert_allclose(distances[:, 0], tags[:, outside].max(axis=1), rtol=1e-9)
    again = Novelty.from_arrays(detector.arrays())
    np.testing.assert_allclose(again.distances(X), distances)
    assert detector.arrays()["novelty_precision_0"].size == 0  # the view the layer replaces is neither fitted nor saved
