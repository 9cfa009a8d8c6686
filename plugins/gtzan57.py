"""The 57 GTZAN features of the Kaggle tables, computed once per batch of segments.

The feature set is the one of Kaggle's ``features_3_sec.csv`` / ``features_30_sec.csv``
(and of the study this project reproduces): plain librosa defaults (``n_fft=2048``,
``hop_length=512``, Hann window, centred frames, 22050 Hz), summarised over the frames of
one segment by their mean and variance (``numpy.var``, ``ddof=0``):

============================  ==========================================================
columns                       definition (per segment ``y``)
============================  ==========================================================
``chroma_stft_*``             ``librosa.feature.chroma_stft(y=y, sr=sr)``, over all 12 x
                              frames values
``rms_*``                     ``librosa.feature.rms(y=y)``
``spectral_centroid_*``       ``librosa.feature.spectral_centroid(y=y, sr=sr)``, Hz
``spectral_bandwidth_*``      ``librosa.feature.spectral_bandwidth(y=y, sr=sr)``, Hz
``rolloff_*``                 ``librosa.feature.spectral_rolloff(y=y, sr=sr)``, Hz
``zero_crossing_rate_*``      ``librosa.feature.zero_crossing_rate(y)``
``harmony_*``, ``perceptr_*``  the samples of ``y_harm, y_perc = librosa.effects.hpss(y)``
``tempo``                     ``librosa.feature.tempo(y=y, sr=sr)[0]``, BPM
``mfcc<k>_*``                 ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)[k - 1]``
============================  ==========================================================

Two implementations are provided:

- :func:`reference_features` makes exactly those librosa calls one by one for one segment
  (seven STFTs, two mel spectrograms, ...). It is the naive reference that tests and
  benchmarks compare against.
- :meth:`Gtzan57.extract` computes the same numbers for a batch of segments with ONE STFT
  shared by every spectral feature, chroma, mel/MFCC, onset/tempo and HPSS, and with
  statistics vectorised over the batch. Wherever librosa derives something from a whole
  array (``power_to_db``'s ``top_db`` floor, ``chroma_stft``'s tuning estimate), it is
  derived per segment here, so each row equals the per-segment reference up to float32
  rounding.

Statistics are accumulated in float64 in both implementations.
"""

from __future__ import annotations

import functools

import librosa
import numpy as np

from genre_tagger.hookspecs import hookimpl

SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
N_MFCC = 20
N_CHROMA = 12
TOP_DB = 80.0
#: samples processed together by :meth:`Gtzan57.extract` (16 segments of 3 s): bounds
#: memory to a few hundred MB whatever the number or length of the segments.
BLOCK_SAMPLES = 16 * 66149

FEATURE_NAMES: list[str] = [
    f"{feature}_{stat}"
    for feature in (
        "chroma_stft",
        "rms",
        "spectral_centroid",
        "spectral_bandwidth",
        "rolloff",
        "zero_crossing_rate",
        "harmony",
        "perceptr",
    )
    for stat in ("mean", "var")
]
FEATURE_NAMES += ["tempo"]
FEATURE_NAMES += [f"mfcc{k}_{stat}" for k in range(1, N_MFCC + 1) for stat in ("mean", "var")]


# --------------------------------------------------------------------------- statistics


def _mean_var(x: np.ndarray, axis: int | tuple[int, ...] = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population variance (``ddof=0``) of ``x`` over ``axis``, in float64."""
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=axis), x.var(axis=axis)


def _assemble(
    chroma: np.ndarray,
    rms: np.ndarray,
    centroid: np.ndarray,
    bandwidth: np.ndarray,
    rolloff: np.ndarray,
    zcr: np.ndarray,
    harmonic: np.ndarray,
    percussive: np.ndarray,
    tempo: np.ndarray,
    mfcc: np.ndarray,
) -> np.ndarray:
    """Summarise frame-wise features into rows in :data:`FEATURE_NAMES` order.

    Every input has a leading batch axis ``[n, ...]``: ``chroma`` ``[n, 12, frames]``,
    ``rms``/``centroid``/``bandwidth``/``rolloff``/``zcr`` ``[n, 1, frames]``,
    ``harmonic``/``percussive`` ``[n, n_samples]``, ``tempo`` ``[n]`` (BPM), ``mfcc``
    ``[n, 20, frames]``. Returns float64 ``[n, 57]``.
    """
    columns = []
    for frames in (chroma, rms, centroid, bandwidth, rolloff, zcr):
        columns.extend(_mean_var(frames, axis=(-2, -1)))
    for waveform in (harmonic, percussive):
        columns.extend(_mean_var(waveform, axis=-1))
    columns.append(np.asarray(tempo, dtype=np.float64).reshape(-1))
    mfcc_mean, mfcc_var = _mean_var(mfcc, axis=-1)  # [n, 20] each
    out = np.column_stack(columns)
    mfcc_cols = np.stack([mfcc_mean, mfcc_var], axis=-1).reshape(len(out), 2 * N_MFCC)
    return np.concatenate([out, mfcc_cols], axis=1)


# --------------------------------------------------------------------- naive reference


def reference_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The 57 features of one segment, by the study's naive per-feature librosa calls.

    Parameters
    ----------
    y : mono audio ``[n_samples]`` (float32, as decoded), any length.
    sr : its sample rate in Hz.

    Returns
    -------
    float64 ``[57]`` in :data:`FEATURE_NAMES` order. Every feature makes its own librosa
    call on ``y`` (and so its own STFT): slow, but the definition itself.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio of shape [n_samples], got shape {y.shape}")
    chroma = librosa.feature.chroma_stft(y=y, sr=sr)
    rms = librosa.feature.rms(y=y)
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr)
    bandwidth = librosa.feature.spectral_bandwidth(y=y, sr=sr)
    rolloff = librosa.feature.spectral_rolloff(y=y, sr=sr)
    zcr = librosa.feature.zero_crossing_rate(y)
    harmonic, percussive = librosa.effects.hpss(y)
    tempo = librosa.feature.tempo(y=y, sr=sr)[0]
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC)
    batch = [x[np.newaxis] for x in (chroma, rms, centroid, bandwidth, rolloff, zcr, harmonic, percussive)]
    return _assemble(*batch, np.array([tempo]), mfcc[np.newaxis])[0]


# ------------------------------------------------------------- shared-STFT fast path


def _power_to_db_per_segment(power: np.ndarray, top_db: float = TOP_DB) -> np.ndarray:
    """``librosa.power_to_db`` (ref 1, amin 1e-10) applied to each segment separately.

    ``power`` is ``[n, bands, frames]``. librosa floors the decibels at ``max - top_db``
    with the maximum of the WHOLE array it is given; here the maximum is taken per
    segment, as a per-segment call would. Returns dB, same shape and dtype.
    """
    log_spec = librosa.power_to_db(power, top_db=None)
    floor = log_spec.max(axis=(-2, -1), keepdims=True) - top_db
    return np.maximum(log_spec, floor)


@functools.lru_cache(maxsize=32)
def _mel_basis(sr: int) -> np.ndarray:
    """The 128-band Slaney mel filter bank ``[128, 1 + n_fft/2]`` of librosa's defaults."""
    return librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=N_MELS)


def _log_mel(power: np.ndarray, sr: int) -> np.ndarray:
    """Per-segment log-mel spectrogram (dB) ``[n, 128, frames]`` from STFT power ``[n, 1025, frames]``.

    The same log-mel is what ``librosa.feature.mfcc`` and ``librosa.onset.onset_strength``
    compute from ``y`` by default.
    """
    mel = np.einsum("...ft,mf->...mt", power, _mel_basis(sr), optimize=True)
    return _power_to_db_per_segment(mel)


def _tuning_per_segment(power: np.ndarray, sr: int) -> np.ndarray:
    """``librosa.estimate_tuning(S=power[i], sr=sr, bins_per_octave=12)`` for every ``i``.

    ``power`` is ``[n, 1025, frames]``; returns ``[n]`` tunings in fractions of a chroma
    bin. The peak picking (``piptrack``, frame-wise) runs once on the batch; the magnitude
    threshold (a median) and the histogram are per segment, as in librosa.
    """
    pitch, mag = librosa.piptrack(S=power, sr=sr, n_fft=N_FFT)
    tunings = np.zeros(len(power))
    for i in range(len(power)):
        pitch_mask = pitch[i] > 0
        if not pitch_mask.any():
            continue  # silence: librosa returns 0.0 (with a warning)
        threshold = np.median(mag[i][pitch_mask])
        tunings[i] = librosa.pitch_tuning(pitch[i][(mag[i] >= threshold) & pitch_mask], bins_per_octave=N_CHROMA)
    return tunings


@functools.lru_cache(maxsize=256)
def _chroma_basis(sr: int, tuning: float) -> np.ndarray:
    """The chroma filter bank ``[12, 1 + n_fft/2]`` for one tuning (cached: tunings are 0.01-bin steps)."""
    return librosa.filters.chroma(sr=sr, n_fft=N_FFT, tuning=tuning, n_chroma=N_CHROMA)


def _chroma(power: np.ndarray, sr: int) -> np.ndarray:
    """``librosa.feature.chroma_stft`` per segment from STFT power ``[n, 1025, frames]``.

    Each segment gets its own tuning estimate and filter bank. Returns ``[n, 12, frames]``,
    each frame scaled to a maximum of 1.
    """
    tunings = _tuning_per_segment(power, sr)
    raw = np.empty((len(power), N_CHROMA, power.shape[-1]), dtype=power.dtype)
    for tuning in np.unique(tunings):
        rows = tunings == tuning
        raw[rows] = np.einsum("cf,...ft->...ct", _chroma_basis(sr, float(tuning)), power[rows], optimize=True)
    return librosa.util.normalize(raw, norm=np.inf, axis=-2)


def _tempo(log_mel: np.ndarray, sr: int) -> np.ndarray:
    """``librosa.feature.tempo`` (BPM, ``[n]``) from per-segment log-mel ``[n, 128, frames]``."""
    onset_envelope = librosa.onset.onset_strength(S=log_mel, sr=sr, n_fft=N_FFT, hop_length=HOP_LENGTH)
    return librosa.feature.tempo(onset_envelope=onset_envelope, sr=sr, hop_length=HOP_LENGTH)[..., 0]


def _hpss_waveforms(stft: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``librosa.effects.hpss`` from an existing STFT ``[n, 1025, frames]``.

    Median-filter separation (kernel 31 along time for harmonic, along frequency for
    percussive; the filters never cross segments), then inverse STFTs trimmed to
    ``n_samples``. Returns float32 ``(harmonic, percussive)``, each ``[n, n_samples]``.
    """
    stft_harm, stft_perc = librosa.decompose.hpss(stft)
    harmonic = librosa.istft(stft_harm, n_fft=N_FFT, hop_length=HOP_LENGTH, length=n_samples, dtype=np.float32)
    percussive = librosa.istft(stft_perc, n_fft=N_FFT, hop_length=HOP_LENGTH, length=n_samples, dtype=np.float32)
    return harmonic, percussive


def _block_features(block: np.ndarray, sr: int) -> np.ndarray:
    """Features of one block of segments ``[n, n_samples]`` float32 -> float64 ``[n, 57]``."""
    stft = librosa.stft(block, n_fft=N_FFT, hop_length=HOP_LENGTH)  # [n, 1025, frames] complex64
    magnitude = np.abs(stft)
    power = magnitude**2

    freq = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=sr, freq=freq)
    bandwidth = librosa.feature.spectral_bandwidth(S=magnitude, sr=sr, freq=freq, centroid=centroid)
    rolloff = librosa.feature.spectral_rolloff(S=magnitude, sr=sr, freq=freq)

    log_mel = _log_mel(power, sr)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)

    harmonic, percussive = _hpss_waveforms(stft, block.shape[-1])

    return _assemble(
        _chroma(power, sr),
        librosa.feature.rms(y=block, frame_length=N_FFT, hop_length=HOP_LENGTH),
        centroid,
        bandwidth,
        rolloff,
        librosa.feature.zero_crossing_rate(block, frame_length=N_FFT, hop_length=HOP_LENGTH),
        harmonic,
        percussive,
        _tempo(log_mel, sr),
        mfcc,
    )


class Gtzan57:
    """The 57 Kaggle GTZAN features (:data:`FEATURE_NAMES`) of 22050 Hz segments."""

    name = "gtzan57"
    version = "1"
    feature_names: list[str] = FEATURE_NAMES
    sample_rate = SAMPLE_RATE

    def extract(self, segments: np.ndarray) -> np.ndarray:
        """Features of each segment.

        Parameters
        ----------
        segments : float32 ``[n_segments, n_samples]`` at 22050 Hz; any ``n_samples``
            (66149 = 3 s gives ``features_3_sec.csv``, a whole clip as one row gives
            ``features_30_sec.csv``).

        Returns
        -------
        float64 ``[n_segments, 57]``, columns in :attr:`feature_names` order; row ``i``
        equals :func:`reference_features` ``(segments[i])`` up to float32 rounding.
        Blocks of at most :data:`BLOCK_SAMPLES` samples are processed together.
        """
        segments = np.asarray(segments)
        if segments.ndim != 2:
            raise ValueError(f"expected segments of shape [n_segments, n_samples], got shape {segments.shape}")
        n_segments, n_samples = segments.shape
        out = np.empty((n_segments, len(FEATURE_NAMES)), dtype=np.float64)
        step = max(1, BLOCK_SAMPLES // max(n_samples, 1))
        for start in range(0, n_segments, step):
            block = np.ascontiguousarray(segments[start : start + step], dtype=np.float32)
            out[start : start + len(block)] = _block_features(block, self.sample_rate)
        return out


@hookimpl
def genre_tagger_feature_extractors() -> list[Gtzan57]:
    """The plugin hook: this module provides the ``gtzan57`` feature extractor."""
    return [Gtzan57()]
