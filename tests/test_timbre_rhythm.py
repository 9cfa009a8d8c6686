"""The timbre-rhythm feature extractor: shapes, purity, batches, and what it measures."""

from __future__ import annotations

import warnings

import librosa
import numpy as np
import pytest

import audiofactory
from genre_tagger import segments, spectrum
from genre_tagger.hookspecs import FeatureExtractor
from genre_tagger.plugins import registry
from genre_tagger.spectrum import Segments


@pytest.fixture(scope="module")
def extractor():
    return registry().feature_extractor("timbre-rhythm")


def features_of(extractor, y: np.ndarray) -> dict[str, float]:
    row = extractor.extract(Segments(segments.split(y)[:1]))[0]
    return dict(zip(extractor.feature_names, row))


def test_registered_and_shaped(extractor):
    assert isinstance(extractor, FeatureExtractor) and extractor.version == "2"
    assert len(extractor.feature_names) == len(set(extractor.feature_names)) == 144
    cut = segments.split(audiofactory.music_like(9.1))
    rows = extractor.extract(Segments(cut))
    assert rows.shape == (3, 144) and rows.dtype == np.float64 and np.isfinite(rows).all()
    with pytest.raises(ValueError, match="shape"):
        extractor.extract(Segments(np.zeros(100, np.float32)))


def test_batches_do_not_change_the_numbers(extractor, monkeypatch):
    cut = segments.split(audiofactory.music_like(5 * 3.0 + 0.1, seed=2))
    together = extractor.extract(Segments(cut))
    monkeypatch.setattr(spectrum, "BATCH_SAMPLES", 2 * segments.SEGMENT_SAMPLES)
    np.testing.assert_allclose(extractor.extract(Segments(cut)), together, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(extractor.extract(Segments(cut[3:4]))[0], together[3], rtol=1e-5, atol=1e-6)


def test_a_row_does_not_depend_on_the_loudness_of_its_batch(extractor):
    # version 1 floored the decibels 80 dB under the batch's loudest segment
    quiet = segments.split(audiofactory.music_like(3.1, seed=4))[:1] * np.float32(1e-4)
    loud = segments.split(audiofactory.music_like(3.1, seed=5))[:1]
    alone = extractor.extract(Segments(quiet))
    beside_loud = extractor.extract(Segments(np.concatenate([loud, quiet])))[1:]
    np.testing.assert_allclose(beside_loud, alone, rtol=1e-5, atol=1e-6)


def test_columns_follow_librosa(extractor):
    y = segments.split(audiofactory.music_like(3.1, seed=3))[0]
    got = features_of(extractor, y)
    contrast = librosa.feature.spectral_contrast(y=y, sr=22050)
    assert got["contrast1_mean"] == pytest.approx(contrast[0].mean(), rel=1e-4)
    assert got["contrast7_std"] == pytest.approx(contrast[6].std(), rel=1e-4)
    mfcc = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=20)
    assert got["mfcc3_delta_std"] == pytest.approx(librosa.feature.delta(mfcc)[2].std(), rel=1e-3)


def test_silence_gives_finite_features_without_warnings(extractor):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = extractor.extract(Segments(np.zeros((2, segments.SEGMENT_SAMPLES), np.float32)))
    assert np.isfinite(rows).all()


def test_noise_is_flatter_than_a_tone_and_clicks_have_their_tempo(extractor):
    tone, noise = (features_of(extractor, y) for y in (audiofactory.tone(3.1), audiofactory.noise(3.1)))
    assert noise["flatness_mean"] > 10 * tone["flatness_mean"]
    clicks = features_of(extractor, audiofactory.clicks(3.1, bpm=120))
    assert clicks["onset_max"] > 5 * clicks["onset_mean"]
    bands = {name: v for name, v in clicks.items() if name.startswith("tempogram_")}
    assert max(bands, key=bands.get) in ("tempogram_90_120", "tempogram_120_150")
