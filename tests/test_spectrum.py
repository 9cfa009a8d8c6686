"""The batch of segments whose STFT every extractor shares (genre_tagger.spectrum)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

import audiofactory
from genre_tagger import segments, spectrum
from genre_tagger.pipeline import analysis, audio
from genre_tagger.spectrum import Segments
from genre_tagger.plugins import registry


def counting_stft(monkeypatch) -> list[int]:
    """Patch spectrum.stft to record the number of segments of each call."""
    real_stft, calls = spectrum.stft, []
    monkeypatch.setattr(spectrum, "stft", lambda samples: calls.append(len(samples)) or real_stft(samples))
    return calls


def test_stft_is_librosas_default_and_computed_once(monkeypatch):
    cut = segments.split(audiofactory.music_like(6.1, seed=1))
    calls = counting_stft(monkeypatch)
    batch = spectrum.Segments(cut)
    assert batch.power is batch.power and batch.magnitude is batch.magnitude and batch.stft is batch.stft
    assert calls == [2]
    np.testing.assert_array_equal(batch.stft, librosa.stft(cut))
    assert batch.stft.flags.c_contiguous and batch.stft.dtype == np.complex64
    np.testing.assert_allclose(batch.power, np.abs(librosa.stft(cut)) ** 2, rtol=1e-6)
    for segment, log_mel in zip(cut, batch.log_mel):  # librosa's default, one segment at a time
        expected = librosa.power_to_db(librosa.feature.melspectrogram(y=segment, sr=segments.SAMPLE_RATE))
        np.testing.assert_allclose(log_mel, expected, rtol=1e-5, atol=1e-4)


def test_batches_bound_memory_and_keep_a_small_batch_whole(monkeypatch):
    monkeypatch.setattr(spectrum, "BATCH_SAMPLES", 2 * segments.SEGMENT_SAMPLES)
    small = spectrum.Segments(np.zeros((2, segments.SEGMENT_SAMPLES), np.float32))
    assert list(spectrum.batches(small)) == [small]
    sizes = [len(b) for b in spectrum.batches(Segments(np.zeros((5, segments.SEGMENT_SAMPLES), np.float32)))]
    assert sizes == [2, 2, 1]
    assert [len(b) for b in spectrum.batches(Segments(np.zeros((3, 5 * segments.SEGMENT_SAMPLES), np.float32)))] == [1, 1, 1]
    with pytest.raises(ValueError, match="shape"):
        spectrum.Segments(np.zeros(100, np.float32))


def test_power_to_db_floor_is_per_segment():
    power = np.stack([np.full((3, 4), 1.0), np.full((3, 4), 1e-10)]).astype(np.float32)
    power[1, 0, 0] = 0.1  # the quiet segment's own maximum, -10 dB: its floor is -90 dB
    db = spectrum.power_to_db(power)
    assert db[0].min() == pytest.approx(0.0)
    assert db[1].max() == pytest.approx(-10.0, abs=1e-4) and db[1].min() == pytest.approx(-90.0, abs=1e-4)


def test_file_features_transform_each_block_once(tmp_path, monkeypatch):
    """Every built-in extractor reads the batch's STFT: one STFT per block, not one per extractor."""
    path = audiofactory.write(tmp_path / "a.wav", audiofactory.music_like(9.5, seed=2))
    decoded = segments.split(np.concatenate(list(audio.stream(path, 10 * segments.SEGMENT_SAMPLES))))
    plugins = registry()
    extractors = [plugins.feature_extractor(n) for n in ("gtzan57", "timbre-rhythm", "hog-mel")]
    calls = counting_stft(monkeypatch)
    features = analysis.file_features(path, extractors)
    assert calls == [3]
    for extractor in extractors:
        np.testing.assert_allclose(features.features[extractor.name], extractor.extract(Segments(decoded)), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["gtzan57", "timbre-rhythm", "hog-mel"])
def test_no_segments_give_no_rows_of_the_right_width(name):
    extractor = registry().feature_extractor(name)
    rows = extractor.extract(spectrum.Segments(np.zeros((0, segments.SEGMENT_SAMPLES), np.float32)))
    assert rows.shape == (0, len(extractor.feature_names))
