import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from genre_tagger.models.predictor import TrackPrediction
from genre_tagger.models.voting import track_votes, vote

CLASSES = np.array(["blues", "jazz", "rock"])


def majority_vote(proba, classes):
    return vote(proba, classes, "majority")


def soft_vote(proba, classes):
    return vote(proba, classes, "soft")


def track_predictions(proba, classes, ids, vote="majority"):
    return track_votes(proba, classes, ids, vote)


def test_majority_wins_over_mean_probability():
    proba = np.array([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25], [0.0, 1.0, 0.0]])
    vote = majority_vote(proba, CLASSES)
    assert vote.genre == "blues"  # two votes beat one confident vote
    assert vote.confidence == pytest.approx(2 / 3)
    assert vote.top == [("blues", pytest.approx(2 / 3)), ("jazz", pytest.approx(1 / 3))]
    assert soft_vote(proba, CLASSES).genre == "jazz"


def test_tie_broken_by_mean_probability():
    proba = np.array([[0.6, 0.4, 0.0], [0.1, 0.9, 0.0]])
    vote = majority_vote(proba, CLASSES)
    assert vote.genre == "jazz"  # 1 vote each; jazz has the higher mean probability
    assert vote.confidence == 0.5


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        majority_vote(np.zeros((0, 3)), CLASSES)
    with pytest.raises(ValueError):
        majority_vote(np.zeros((2, 2)), CLASSES)


def test_track_predictions_groups_rows():
    proba = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]], dtype=float)
    tracks, predicted = track_predictions(proba, CLASSES, np.array(["b", "a", "a", "b"]))
    assert list(tracks) == ["a", "b"] and list(predicted) == ["rock", "blues"]


@given(hnp.arrays(float, st.tuples(st.integers(1, 30), st.just(3)), elements=st.floats(0, 1)))
def test_vote_properties(raw):
    proba = raw + 1e-9
    proba = proba / proba.sum(axis=1, keepdims=True)
    vote = majority_vote(proba, CLASSES)
    votes = np.bincount(proba.argmax(axis=1), minlength=3)
    assert vote.genre in CLASSES
    assert votes[list(CLASSES).index(vote.genre)] == votes.max()  # winner has the most votes
    assert vote.confidence == pytest.approx(votes.max() / len(proba))
    assert sum(share for _, share in vote.top) <= 1 + 1e-9
    assert [share for _, share in vote.top] == sorted((share for _, share in vote.top), reverse=True)
    # row order never changes the votes (a tie broken by equal mean probabilities may
    # differ in the last bit of a float sum, so compare the shares, not the tie order)
    reversed_vote = majority_vote(proba[::-1], CLASSES)
    assert reversed_vote.confidence == vote.confidence
    assert sorted(s for _, s in reversed_vote.top) == pytest.approx(sorted(s for _, s in vote.top))


@given(
    hnp.arrays(float, st.tuples(st.integers(1, 40), st.just(3)), elements=st.floats(0, 1)),
    st.integers(0, 2**32 - 1),
)
def test_track_predictions_equal_majority_vote_per_track(raw, seed):
    proba = raw / (raw.sum(axis=1, keepdims=True) + 1e-12)
    ids = np.random.default_rng(seed).integers(0, 4, len(proba)).astype(str)
    tracks, predicted = track_predictions(proba, CLASSES, ids)
    for track, genre in zip(tracks, predicted):
        rows = proba[ids == track]
        votes = np.bincount(rows.argmax(axis=1), minlength=3)
        leaders = votes == votes.max()
        means = rows.mean(axis=0)[leaders]
        if len(means) > 1 and np.sort(means)[-1] - np.sort(means)[-2] < 1e-9:
            continue  # a tie of mean probabilities down to float rounding: either answer is right
        assert genre == majority_vote(rows, CLASSES).genre


def test_soft_track_predictions_take_the_highest_mean_probability():
    proba = np.array([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25], [0.0, 1.0, 0.0]])
    _, majority = track_predictions(proba, CLASSES, np.array(["t", "t", "t"]))
    _, soft = track_predictions(proba, CLASSES, np.array(["t", "t", "t"]), vote="soft")
    assert list(majority) == ["blues"] and list(soft) == ["jazz"] == [soft_vote(proba, CLASSES).genre]


def test_a_cached_prediction_decides_by_either_vote():
    cached = TrackPrediction.from_json(TrackPrediction(
        3, {"blues": 2, "jazz": 1, "rock": 0}, {"blues": 0.27, "jazz": 0.57, "rock": 0.17}).to_json())
    majority = cached.decide("majority")
    assert majority.genre == "blues" and majority.confidence == pytest.approx(2 / 3)
    assert majority.top == [("blues", pytest.approx(2 / 3)), ("jazz", pytest.approx(1 / 3))]
    soft = cached.decide("soft")
    assert soft.genre == "jazz" and soft.confidence == 0.57
    assert [g for g, _ in soft.top] == ["jazz", "blues", "rock"]


def test_a_silent_prediction_is_unknown_and_an_old_cache_entry_is_not_read():
    silent = TrackPrediction.from_json(TrackPrediction(2, silent=True).to_json())
    assert silent.decide("majority").genre == silent.decide("soft").genre == "unknown"
    assert TrackPrediction.from_json({"genre": "blues", "confidence": 1.0, "top": [], "segments": 3}) is None
