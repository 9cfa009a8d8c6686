"""hog-mel features and the hog-logreg model: shapes, purity, bundles, and real clips."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

import audiofactory
from genre_tagger import segments
from genre_tagger.models import bundle
from genre_tagger.pipeline import audio
from genre_tagger.plugins import registry
from genre_tagger.spectrum import Segments
from genre_tagger_plugins import hog_mel
from genre_tagger_plugins.estimators.logreg import LogReg


def HogLogReg(**params) -> LogReg:
    return registry().model("hog-logreg").make(**params)

MAX_BUNDLE_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def extractor():
    return registry().feature_extractor("hog-mel")


@pytest.fixture(scope="module")
def clip_segments() -> np.ndarray:
    """Four 3-second segments of generated music; the third made 40 dB quieter."""
    cut = np.array(segments.split(audiofactory.music_like(4 * 3.0 + 0.1, seed=1)))
    cut[2] *= 0.01
    return cut


# --- features ------------------------------------------------------------------------------


def test_registered_with_the_chosen_defaults(extractor):
    assert isinstance(extractor, hog_mel.HogMel)
    assert extractor.version == "1"
    assert (extractor.n_mels, extractor.pixels_per_cell, extractor.orientations) == (
        hog_mel.N_MELS,
        hog_mel.PIXELS_PER_CELL,
        hog_mel.ORIENTATIONS,
    )
    n = len(extractor.feature_names)
    assert n == len(set(extractor.feature_names))
    assert n == hog_mel.hog_size(hog_mel.N_MELS, 130, hog_mel.ORIENTATIONS, hog_mel.PIXELS_PER_CELL, 2)
    assert 100 < n <= 4096  # a few thousand floats per cached segment at most
    assert registry().model("hog-logreg").feature_extractors == ("hog-mel",)


def test_features_are_finite_bounded_and_deterministic(extractor, clip_segments):
    features = extractor.extract(Segments(clip_segments))
    assert features.shape == (4, len(extractor.feature_names))
    assert features.dtype == np.float64
    assert np.all(np.isfinite(features))
    assert features.min() >= 0 and features.max() <= 1  # L2-Hys normalised histograms
    assert features.std(axis=0).max() > 0
    np.testing.assert_array_equal(extractor.extract(Segments(clip_segments)), features)


def test_batch_equals_one_segment_at_a_time(extractor, clip_segments):
    """Each row depends on its own segment only (per-segment dB reference and floor)."""
    batch = extractor.extract(Segments(clip_segments))
    single = np.vstack([extractor.extract(Segments(clip_segments[i : i + 1])) for i in range(len(clip_segments))])
    np.testing.assert_allclose(batch, single, atol=1e-6)


def test_a_quiet_segment_gives_the_features_of_the_loud_one():
    """The image is relative to the segment's own maximum: 40 dB quieter, same HOG."""
    segment = audiofactory.music_like(3.1, seed=2)[: segments.SEGMENT_SAMPLES][None, :]
    extractor = hog_mel.HogMel()
    np.testing.assert_allclose(extractor.extract(Segments(segment * 0.01)), extractor.extract(Segments(segment)), atol=1e-4)


def test_log_mel_images_equal_librosa_per_segment(clip_segments):
    images = hog_mel.log_mel_images(Segments(clip_segments), n_mels=64)
    assert images.shape == (4, 64, 130) and images.dtype == np.float32
    for segment, image in zip(clip_segments, images):
        power = librosa.feature.melspectrogram(y=segment, sr=22050, n_fft=2048, hop_length=512, n_mels=64)
        expected = (librosa.power_to_db(power, ref=np.max, top_db=80.0) + 80.0) / 80.0
        np.testing.assert_allclose(image, expected, atol=1e-4)
        assert image.max() == pytest.approx(1.0) and image.min() >= 0.0


def test_silence_gives_finite_zero_features(extractor):
    features = extractor.extract(Segments(np.zeros((2, segments.SEGMENT_SAMPLES), np.float32)))
    assert np.all(np.isfinite(features)) and not features.any()


def test_wrong_shapes_are_refused(extractor):
    with pytest.raises(ValueError, match="shape"):
        extractor.extract(Segments(np.zeros(segments.SEGMENT_SAMPLES, np.float32)))
    with pytest.raises(ValueError, match="shape"):
        extractor.extract(Segments(np.zeros((1, 1000), np.float32)))
    with pytest.raises(ValueError, match="smaller than one HOG block"):
        hog_mel.HogMel(n_mels=16, pixels_per_cell=16)


# --- model ---------------------------------------------------------------------------------


def synthetic(n_features: int, n_clips=(10, 10, 4), n_segments=5, seed=0):
    """Non-negative HOG-like rows of three imbalanced classes, grouped by clip."""
    rng = np.random.default_rng(seed)
    X, y, groups = [], [], []
    for label, count in zip(("blues", "jazz", "pop"), n_clips):
        centre = rng.random(n_features) * 0.3
        for clip in range(count):
            clip_centre = centre + rng.random(n_features) * 0.1
            X.append(np.abs(clip_centre + rng.normal(0, 0.05, (n_segments, n_features))))
            y += [label] * n_segments
            groups += [f"{label}.{clip:05d}"] * n_segments
    return np.vstack(X), np.array(y), np.array(groups)


@pytest.fixture(scope="module")
def data(extractor):
    return synthetic(len(extractor.feature_names))


def bundle_bytes(directory) -> int:
    return sum(p.stat().st_size for p in directory.iterdir())


@pytest.mark.parametrize("n_components", [None, 16])
def test_model_round_trips_through_a_bundle(n_components, data, extractor, tmp_path):
    X, y, groups = data
    model = HogLogReg(n_components=n_components).fit(X, y, groups)
    assert list(model.classes_) == ["blues", "jazz", "pop"]
    assert model.C_ in model.C and len(model.scores_) == len(model.C)  # C by inner grouped CV
    proba = model.predict_proba(X[:9])
    assert proba.shape == (9, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert (model.classes_[model.predict_proba(X).argmax(1)] == y).mean() > 0.9

    saved = bundle.Bundle("hog-logreg", {extractor.name: extractor.version}, model, training={"n_clips": 24})
    directory = bundle.save(saved, tmp_path / "hog")
    assert not list(directory.glob("*.pkl"))
    assert bundle_bytes(directory) < MAX_BUNDLE_BYTES
    loaded = bundle.load(directory, registry())
    assert isinstance(loaded.model, LogReg) and loaded.model.C_ == model.C_
    np.testing.assert_allclose(loaded.model.predict_proba(X[:9]), proba, rtol=1e-12, atol=1e-12)


def test_default_model_bundle_is_small(data, extractor, tmp_path):
    """Default PCA size on full-width rows of ten classes: well under 20 MB."""
    rng = np.random.default_rng(1)
    n_features = len(extractor.feature_names)
    y = np.repeat([f"g{i}" for i in range(10)], 30)
    X = rng.random((len(y), n_features)) + np.repeat(rng.random((10, n_features)), 30, axis=0)
    model = HogLogReg(C=(0.01,)).fit(X, y, np.repeat(np.arange(60), 5))
    directory = bundle.save(bundle.Bundle("hog-logreg", {extractor.name: extractor.version}, model), tmp_path / "big")
    assert bundle_bytes(directory) < MAX_BUNDLE_BYTES


def test_balanced_weights_and_probabilities_match_sklearn(data):
    """predict_proba (numpy on the saved arrays) equals sklearn's on the same pipeline."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y, groups = data
    model = HogLogReg(n_components=8, C=(0.01,)).fit(X, y, groups)
    scaler = StandardScaler().fit(X)
    pca = PCA(8, svd_solver="auto", random_state=0).fit(scaler.transform(X))
    reference = LogisticRegression(C=0.01, class_weight="balanced", max_iter=3000)
    Z = pca.transform(scaler.transform(X))
    reference.fit(Z, y)
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(Z), atol=1e-6)


def test_two_classes(data):
    X, y, groups = data
    keep = y != "pop"
    model = HogLogReg(n_components=4, C=(0.01,)).fit(X[keep], y[keep], groups[keep])
    proba = model.predict_proba(X[keep])
    assert proba.shape == (keep.sum(), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert (model.classes_[proba.argmax(1)] == y[keep]).mean() > 0.9
    assert LogReg.load(model.save()).predict_proba(X[:3]).shape == (3, 2)


# --- real clips ----------------------------------------------------------------------------


@pytest.mark.data
def test_real_clips(gtzan_dir, extractor):
    """Two GTZAN clips: ten 3-second segments each, finite, and the genres look different."""
    rows = {}
    for genre in ("classical", "metal"):
        path = sorted((gtzan_dir / "genres" / genre).glob("*.ogg"))[0]
        features = extractor.extract(Segments(segments.split(audio.load(path))))
        assert features.shape == (10, len(extractor.feature_names))
        assert np.all(np.isfinite(features))
        assert features.min() >= 0 and features.max() <= 1
        rows[genre] = features
    within = np.linalg.norm(rows["metal"] - rows["metal"].mean(0), axis=1).mean()
    between = np.linalg.norm(rows["classical"].mean(0) - rows["metal"].mean(0))
    assert between > 0.5 * within
