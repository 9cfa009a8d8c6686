"""A batch of segments and its short-time Fourier transform, computed once and shared.

Every built-in feature extractor starts from the same STFT: librosa's defaults at
22050 Hz (``n_fft=2048``, ``hop_length=512``, periodic Hann window, centred frames, zero
padding). The core hands each extractor the same :class:`Segments`, which computes that
STFT, its magnitude, its power and librosa's default log-mel spectrogram on first use
and keeps them, so one batch of audio is transformed once however many extractors read
it.

A batch is bounded (:data:`BATCH_SAMPLES`): its spectra take about 35 MB. Extractors
iterate over :func:`batches`, which yields a batch small enough as it is (spectra
shared) and cuts a larger one into batches of that size.
"""

from __future__ import annotations

import functools
from typing import Iterator, Literal

import librosa  # cheap: librosa imports its submodules (and numba, scipy) on first use
import numpy as np

from genre_tagger.segments import SAMPLE_RATE, SEGMENT_SAMPLES

__all__ = [
    "AMIN", "BATCH_SAMPLES", "HOP_LENGTH", "N_FFT", "N_MELS", "TOP_DB", "Segments", "batches", "mel_basis",
    "mel_power", "power_to_db", "stft",
]

N_FFT = 2048
HOP_LENGTH = 512
TOP_DB = 80.0  # librosa.power_to_db's default dynamic range
AMIN = 1e-10  # librosa.power_to_db's floor on power before the logarithm
N_MELS = 128  # librosa's default mel bands
#: samples per batch: 16 three-second segments, whose STFT (16 x 1025 x 130 complex64)
#: is about 17 MB, and magnitude and power about 9 MB each
BATCH_SAMPLES = 16 * SEGMENT_SAMPLES


def stft(samples: np.ndarray) -> np.ndarray:
    """``librosa.stft(samples, n_fft=2048, hop_length=512)`` of float32 ``[n, n_samples]``,
    as C-ordered complex64 ``[n, 1 + N_FFT // 2, n_frames]`` (each segment's spectrogram
    contiguous, as the extractors' kernels and matrix products want it)."""
    return np.ascontiguousarray(librosa.stft(samples, n_fft=N_FFT, hop_length=HOP_LENGTH))


@functools.cache
def mel_basis(n_mels: int = N_MELS) -> np.ndarray:
    """librosa's Slaney mel filter bank at 22050 Hz, float32 ``[n_mels, 1 + N_FFT // 2]``."""
    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels)


def mel_power(power: np.ndarray, n_mels: int = N_MELS) -> np.ndarray:
    """``librosa.feature.melspectrogram(S=power, n_mels=n_mels)``, with the filter bank
    made once: ``power [..., 1025, frames]`` -> ``[..., n_mels, frames]``."""
    return np.einsum("...ft,mf->...mt", power, mel_basis(n_mels), optimize=True)


def power_to_db(power: np.ndarray, ref: Literal["one", "max"] = "one", top_db: float = TOP_DB) -> np.ndarray:
    """``librosa.power_to_db`` applied to each segment of ``power [n, bands, frames]`` alone.

    ``ref="one"`` is dB re 1 (librosa's default), ``ref="max"`` dB re the segment's own
    loudest cell (``ref=np.max``: 0 there). Either way the decibels are floored
    ``top_db`` under the segment's maximum; librosa would take the maximum of the WHOLE
    array, which would make a segment's features depend on the rest of its batch.
    Returns the same shape and dtype.
    """
    db = 10.0 * np.log10(np.maximum(AMIN, power))
    peak = db.max(axis=(-2, -1), keepdims=True)
    if ref == "max":
        return np.maximum(db - peak, -top_db)
    return np.maximum(db, peak - top_db)


class Segments:
    """Segments of audio, float32 ``[n_segments, n_samples]`` at 22050 Hz, with their
    spectra computed on first use and kept (:attr:`stft`, :attr:`magnitude`, :attr:`power`,
    :attr:`log_mel`)."""

    def __init__(self, samples: np.ndarray):
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if samples.ndim != 2:
            raise ValueError(f"expected segments of shape [n_segments, n_samples], got shape {samples.shape}")
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def n_samples(self) -> int:
        """Samples per segment."""
        return self.samples.shape[1]

    @functools.cached_property
    def stft(self) -> np.ndarray:
        """complex64 ``[n, 1025, n_frames]``: see :func:`stft`."""
        return stft(self.samples)

    @functools.cached_property
    def magnitude(self) -> np.ndarray:
        """float32 ``[n, 1025, n_frames]``, ``|stft|``."""
        return np.abs(self.stft)

    @functools.cached_property
    def power(self) -> np.ndarray:
        """float32 ``[n, 1025, n_frames]``, ``|stft| ** 2``."""
        return self.magnitude**2

    @functools.cached_property
    def log_mel(self) -> np.ndarray:
        """float32 ``[n, 128, n_frames]``: what ``librosa.feature.mfcc`` and
        ``librosa.onset.onset_strength`` compute from a segment by default, i.e.
        ``power_to_db(melspectrogram(S=power))`` (128 Slaney mel bands, dB re 1) with the
        80 dB floor under each segment's own maximum."""
        return power_to_db(mel_power(self.power))


def batches(segments: Segments) -> Iterator[Segments]:
    """``segments`` in batches of at most :data:`BATCH_SAMPLES` samples (at least one
    segment each; none for no segments). Segments within that bound are yielded
    themselves, so the spectra they have (or compute) are shared with every other reader."""
    if not isinstance(segments, Segments):
        raise TypeError(f"expected genre_tagger.spectrum.Segments, got {type(segments).__name__}")
    if 0 < segments.samples.size <= BATCH_SAMPLES:
        yield segments
        return
    step = max(1, BATCH_SAMPLES // max(segments.n_samples, 1))
    for start in range(0, len(segments), step):
        yield Segments(segments.samples[start : start + step])
