"""The gtzan57 feature plugin: Kaggle's 57 GTZAN features, fast path vs naive reference.

Without data: the batched, shared-STFT ``extract`` equals the naive per-segment librosa
calls of ``reference_features`` on generated audio. With ``../shared/data/gtzan``: both
reproduce Kaggle's published tables on the lossless reference clips.
"""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
import soundfile

import audiofactory
from genre_tagger import spectrum
from genre_tagger.hookspecs import FeatureExtractor
from genre_tagger.segments import SAMPLE_RATE, SEGMENT_SAMPLES
from genre_tagger.spectrum import Segments
from genre_tagger_plugins import gtzan57
from genre_tagger_plugins.gtzan57 import Gtzan57, reference_features

# The header of Kaggle's features_3_sec.csv between `length` and `label`.
KAGGLE_COLUMNS = (
    "chroma_stft_mean,chroma_stft_var,rms_mean,rms_var,spectral_centroid_mean,spectral_centroid_var,"
    "spectral_bandwidth_mean,spectral_bandwidth_var,rolloff_mean,rolloff_var,zero_crossing_rate_mean,"
    "zero_crossing_rate_var,harmony_mean,harmony_var,perceptr_mean,perceptr_var,tempo,"
    + ",".join(f"mfcc{k}_mean,mfcc{k}_var" for k in range(1, 21))
).split(",")
TEMPO = KAGGLE_COLUMNS.index("tempo")
NEAR_ZERO = ("harmony_mean", "perceptr_mean")  # means of zero-mean waveforms: compared absolutely
MFCC_MEANS = np.array([name.startswith("mfcc") and name.endswith("_mean") for name in KAGGLE_COLUMNS])
MFCC_VARS = np.roll(MFCC_MEANS, 1)  # each mean's variance is the column after it


def segment(kind: str, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """A 3-s float32 segment of generated audio."""
    seconds = SEGMENT_SAMPLES / SAMPLE_RATE + 0.01
    y = {
        "music": lambda: audiofactory.music_like(seconds, seed=seed),
        "tone": lambda: audiofactory.tone(seconds, freq=445.0),  # detuned: tuning estimate != 0
        "noise": lambda: audiofactory.noise(seconds, seed=seed),
        "clicks": lambda: audiofactory.clicks(seconds, bpm=90 + 10 * seed),
        "silence": lambda: np.zeros(SEGMENT_SAMPLES, np.float32),
    }[kind]()
    return (scale * y[:SEGMENT_SAMPLES]).astype(np.float32)


def assert_matches_reference(features: np.ndarray, segments: np.ndarray) -> None:
    """Each row of ``features`` equals ``reference_features`` of its segment (tempo exactly)."""
    expected = np.stack([reference_features(y) for y in segments])
    assert features.shape == expected.shape
    assert features.dtype == np.float64
    np.testing.assert_array_equal(features[:, TEMPO], expected[:, TEMPO])
    np.testing.assert_allclose(features[:, ~MFCC_MEANS], expected[:, ~MFCC_MEANS], rtol=1e-6, atol=1e-9)
    # an MFCC's mean sums frames of order 10-100 that may cancel out (noise): the float32
    # rounding of the frames (FFT kernels round differently on other CPUs) sets its error
    scale = np.abs(expected[:, MFCC_VARS]) ** 0.5 + 1.0
    np.testing.assert_array_less(np.abs(features[:, MFCC_MEANS] - expected[:, MFCC_MEANS]), 1e-6 * scale)


# ------------------------------------------------------------------------- contract


def test_the_plugin_hook_provides_the_extractor():
    (extractor,) = gtzan57.genre_tagger_feature_extractors()
    assert isinstance(extractor, FeatureExtractor)
    assert extractor.name == "gtzan57" and extractor.version == "1"


def test_feature_names_are_kaggles_columns_in_order():
    assert Gtzan57().feature_names == KAGGLE_COLUMNS
    assert len(KAGGLE_COLUMNS) == 57


def test_shapes_and_input_checks():
    extractor = Gtzan57()
    assert extractor.extract(Segments(np.zeros((0, SEGMENT_SAMPLES), np.float32))).shape == (0, 57)
    with pytest.raises(ValueError, match="n_segments, n_samples"):
        extractor.extract(Segments(np.zeros(SEGMENT_SAMPLES, np.float32)))


# ------------------------------------------------- fast path == naive per-segment calls


@pytest.mark.filterwarnings("ignore:Trying to estimate tuning from empty frequency set")  # librosa, on silence
def test_batch_equals_the_naive_reference_per_segment():
    # loud and very quiet segments side by side: power_to_db's top_db floor and the chroma
    # tuning estimate must be per segment, not per batch
    segments = np.stack(
        [
            segment("music", 0),
            segment("music", 1, scale=1e-3),
            segment("tone"),
            segment("noise", 2),
            segment("clicks", 1),
            segment("silence"),
        ]
    )
    assert_matches_reference(Gtzan57().extract(Segments(segments)), segments)


def test_a_read_only_view_of_a_track_works_like_a_copy():
    from genre_tagger.segments import split

    track = audiofactory.music_like(7.0, seed=3)
    view = split(track)  # read-only, as the core passes it
    assert_matches_reference(Gtzan57().extract(Segments(view)), np.array(view))


@pytest.mark.parametrize("seconds", [1.0, 30.0])
def test_any_segment_length_works(seconds):
    y = audiofactory.music_like(seconds, seed=4)
    assert_matches_reference(Gtzan57().extract(Segments(y[np.newaxis])), y[np.newaxis])


def test_blocks_do_not_change_the_numbers(monkeypatch):
    segments = np.stack([segment("music", seed) for seed in range(5)])
    whole = Gtzan57().extract(Segments(segments))
    monkeypatch.setattr(spectrum, "BATCH_SAMPLES", 2 * SEGMENT_SAMPLES)  # batches of 2, 2, 1
    # to float32 rounding: on some CPUs (an AMD EPYC here) the FFT's SIMD kernels round
    # differently for arrays of other shapes (1e-7 relative); on others the numbers are equal
    np.testing.assert_allclose(Gtzan57().extract(Segments(segments)), whole, rtol=1e-6, atol=1e-9)


def test_silence_gives_finite_features_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features = Gtzan57().extract(Segments(np.zeros((2, SEGMENT_SAMPLES), np.float32)))
    assert np.isfinite(features).all()


# ---------------------------------------------------------- parity with Kaggle's tables


def relative_errors(ours: np.ndarray, kaggle: np.ndarray) -> dict[str, float]:
    """Per feature: median relative error, or max absolute error for the near-zero means."""
    errors = {}
    for j, name in enumerate(KAGGLE_COLUMNS):
        if name in NEAR_ZERO:
            errors[name] = float(np.max(np.abs(ours[:, j] - kaggle[:, j])))
        elif name != "tempo":
            errors[name] = float(np.median(np.abs(ours[:, j] - kaggle[:, j]) / np.abs(kaggle[:, j])))
    return errors


def check_parity(label: str, ours: np.ndarray, kaggle: np.ndarray) -> None:
    """Per-feature median relative error <= 3 %, near-zero means within 5e-4, tempo mostly equal."""
    errors = relative_errors(ours, kaggle)
    relative = {k: v for k, v in errors.items() if k not in NEAR_ZERO}
    worst = sorted(relative.items(), key=lambda kv: -kv[1])[:5]
    tempo_equal = float(np.mean(np.abs(ours[:, TEMPO] - kaggle[:, TEMPO]) <= 0.01))
    summary = (
        f"{label} ({len(ours)} rows): worst median relative errors "
        + ", ".join(f"{k} {100 * v:.2f} %" for k, v in worst)
        + "; near-zero max abs "
        + ", ".join(f"{k} {errors[k]:.1e}" for k in NEAR_ZERO)
        + f"; tempo equal on {100 * tempo_equal:.0f} %"
    )
    print(summary)
    assert max(relative.values()) <= 0.03, summary
    assert all(errors[k] <= 5e-4 for k in NEAR_ZERO), summary
    assert tempo_equal >= 0.5, summary


def read_table(path) -> dict[str, dict[str, str]]:
    """A Kaggle feature table, ``{filename: {column: value}}``."""
    with open(path, newline="") as handle:
        return {row["filename"]: row for row in csv.DictReader(handle)}


def kaggle_row(row: dict[str, str]) -> np.ndarray:
    return np.array([float(row[column]) for column in KAGGLE_COLUMNS])


@pytest.mark.data
def test_segments_match_kaggles_features_3_sec(gtzan_dir):
    reference = gtzan_dir / "reference"
    table = read_table(reference / "features_3_sec_classical_jazz_rock.csv")
    ours, kaggle = [], []
    for genre in ("classical", "jazz", "rock"):
        y, sr = soundfile.read(reference / f"{genre}.00000.flac", dtype="float32")
        assert sr == SAMPLE_RATE
        names = sorted((name for name in table if name.startswith(f"{genre}.00000.")), key=lambda n: int(n.split(".")[2]))
        assert len(names) == 10
        index = [int(name.split(".")[2]) for name in names]
        segments = np.stack([y[k * SEGMENT_SAMPLES : (k + 1) * SEGMENT_SAMPLES] for k in index])
        ours.append(Gtzan57().extract(Segments(segments)))
        kaggle.append(np.stack([kaggle_row(table[name]) for name in names]))
    check_parity("features_3_sec", np.concatenate(ours), np.concatenate(kaggle))


@pytest.mark.data
def test_whole_clips_match_kaggles_features_30_sec(gtzan_dir):
    reference = gtzan_dir / "reference"
    table = read_table(reference / "features_30_sec.csv")
    clips = sorted(reference.glob("*.00000.flac"))
    assert len(clips) == 10
    ours, kaggle = [], []
    for path in clips:
        y, sr = soundfile.read(path, dtype="float32")
        row = table[path.name.replace(".flac", ".wav")]
        assert sr == SAMPLE_RATE and len(y) == int(row["length"])
        ours.append(Gtzan57().extract(Segments(y[np.newaxis]))[0])
        kaggle.append(kaggle_row(row))
    check_parity("features_30_sec", np.array(ours), np.array(kaggle))
