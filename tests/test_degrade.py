"""Degraded copies of audio (band-limited, low-bitrate mp3, a loud modern master): what they
remove, add and keep."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import audiofactory
from genre_tagger.pipeline import analysis
from genre_tagger.training import degrade
from genre_tagger.plugins import registry


def energy_above(y: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    return float(spectrum[np.fft.rfftfreq(len(y), 1 / 22050) > hz].sum() / spectrum.sum())


@pytest.fixture(scope="module")
def bright() -> np.ndarray:
    """Music-like audio plus white noise: energy up to 11 kHz."""
    return (audiofactory.music_like(4.0) + audiofactory.noise(4.0, amplitude=0.05)).astype(np.float32)


def test_band_limit_removes_everything_above_8_khz_and_keeps_the_rest(bright):
    limited = degrade.band_limit(bright)
    assert limited.shape == bright.shape and limited.dtype == np.float32
    assert energy_above(bright, 8200) > 0.02 and energy_above(limited, 8200) < 1e-5
    assert np.corrcoef(bright, limited)[0, 1] > 0.9


def test_lossy_mp3_keeps_length_and_alignment_but_loses_detail(bright):
    coded = degrade.lossy_mp3(bright)
    assert coded.shape == bright.shape and coded.dtype == np.float32
    assert np.corrcoef(bright, coded)[0, 1] > 0.8  # aligned: the encoder delay is removed
    assert not np.allclose(coded, bright, atol=1e-3)
    assert energy_above(coded, 9000) < energy_above(bright, 9000)


def test_loud_master_is_louder_limited_and_aligned(bright):
    quiet = (0.1 * bright).astype(np.float32)  # an old, quiet source
    master = degrade.loud_master(quiet)
    assert master.shape == quiet.shape and master.dtype == np.float32
    level = 20 * np.log10(float(np.sqrt(np.mean(master ** 2))))
    assert degrade.LOUD_RMS_DB <= level <= -5  # the limiter's drive lifts it about 3 dB more
    assert np.abs(master).max() <= 1.1  # peaks soft-limited (an mp3 may overshoot a little)
    assert np.corrcoef(quiet, master)[0, 1] > 0.8  # aligned: the same music, not shifted


@pytest.mark.parametrize("name", sorted(degrade.DEGRADATIONS))
def test_degraded_analysis_changes_features_but_never_the_file(name, tmp_path):
    bright = audiofactory.music_like(7.0) + audiofactory.noise(7.0, amplitude=0.05)
    path = audiofactory.write(tmp_path / "clip.flac", bright.clip(-1, 1))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    extractors = [registry().feature_extractor("gtzan57")]
    clean = analysis.file_features(path, extractors)
    degraded = analysis.file_features(path, extractors, transform=degrade.DEGRADATIONS[name])
    assert degraded.features["gtzan57"].shape == clean.features["gtzan57"].shape
    assert not np.allclose(degraded.features["gtzan57"], clean.features["gtzan57"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert analysis.selection_name(None, name) == f"all+{name}" != analysis.selection_name(None)
