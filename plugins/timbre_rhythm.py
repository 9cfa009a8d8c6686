"""Timbre, harmony and rhythm features beyond the 57 GTZAN ones, from one STFT per batch.

``gtzan57`` stays exactly the Kaggle feature set; this extractor adds what it lacks,
each summarised over the frames of a segment (librosa defaults unless stated: 22050 Hz,
``n_fft=2048``, ``hop_length=512``):

==========================  ===========================================================
columns                     definition (per segment)
==========================  ===========================================================
``contrast<k>_mean/std``    ``librosa.feature.spectral_contrast``: peak-to-valley ratio
                            in 7 octave bands, dB
``flatness_mean/std``       ``librosa.feature.spectral_flatness``: tonal vs noisy
``mel<k>_mean/std``         log power (dB re 1) in 32 mel bands: the spectral envelope
``flux_mean/std``           spectral flux, L2 norm of the positive magnitude change
``mfcc<k>_delta_std``       std of the first and second (``delta2``) time derivatives of
``mfcc<k>_delta2_std``      the 20 MFCCs: how fast the timbre moves
``tonnetz<k>_mean/std``     ``librosa.feature.tonnetz`` from the STFT chroma: harmony
``onset_mean/std/max``      ``librosa.onset.onset_strength``
``tempogram_<lo>_<hi>``     mean autocorrelation tempogram (3 s window) in BPM bands
==========================  ===========================================================

Computed for a batch of segments at once: from the STFT the batch shares with the other
extractors (:class:`genre_tagger.spectrum.Segments`), librosa's functions applied to the
whole ``[n_segments, n_bins, n_frames]`` stack. Decibels are floored 80 dB under each
segment's own maximum, so a row depends on its own segment only (version 1 floored them
under the batch's maximum).
"""

from __future__ import annotations

import librosa  # cheap: librosa imports its submodules (and numba, scipy) on first use
import numpy as np

from genre_tagger import spectrum
from genre_tagger.hookspecs import hookimpl
from genre_tagger.segments import SAMPLE_RATE
from genre_tagger.spectrum import HOP_LENGTH, N_FFT, Segments, mel_power, power_to_db
N_MELS = 32
N_MFCC = 20
N_CONTRAST_BANDS = 7  # librosa's default n_bands=6, plus the band above them
TEMPOGRAM_FRAMES = 128  # ~3 s: the autocorrelation window of the tempogram
TEMPO_BAND_EDGES = (30, 60, 90, 120, 150, 180, 240, 300)  # BPM


def _mean_std(name: str, n: int | None = None) -> list[str]:
    names = [f"{name}{k}" for k in range(1, n + 1)] if n else [name]
    return [f"{x}_{stat}" for stat in ("mean", "std") for x in names]


FEATURE_NAMES: list[str] = (
    _mean_std("contrast", N_CONTRAST_BANDS)
    + _mean_std("flatness")
    + _mean_std("mel", N_MELS)
    + _mean_std("flux")
    + [f"mfcc{k}_delta_std" for k in range(1, N_MFCC + 1)]
    + [f"mfcc{k}_delta2_std" for k in range(1, N_MFCC + 1)]
    + _mean_std("tonnetz", 6)
    + ["onset_mean", "onset_std", "onset_max"]
    + [f"tempogram_{lo}_{hi}" for lo, hi in zip(TEMPO_BAND_EDGES[:-1], TEMPO_BAND_EDGES[1:])]
)


def _stats(x: np.ndarray) -> list[np.ndarray]:
    """Mean and std over frames (last axis) of ``x [n, k, n_frames]`` -> 2 x ``[n, k]``."""
    return [x.mean(axis=-1), x.std(axis=-1)]


def batch_features(segments: Segments, sr: int = SAMPLE_RATE) -> np.ndarray:
    """:data:`FEATURE_NAMES` of each segment of a batch, float64 ``[n, len(FEATURE_NAMES)]``."""
    magnitude, power = segments.magnitude, segments.power  # [n, bins, frames], shared with other extractors
    # one segment at a time: spectral_contrast's decibels are floored under the maximum of
    # the array it is given, which over a batch would be the loudest segment's
    contrast = np.stack([librosa.feature.spectral_contrast(S=m, sr=sr, n_fft=N_FFT, hop_length=HOP_LENGTH)
                         for m in magnitude])
    flatness = librosa.feature.spectral_flatness(S=magnitude)
    log_mel = power_to_db(mel_power(power, N_MELS))
    flux = np.sqrt((np.diff(magnitude, axis=-1).clip(min=0) ** 2).sum(axis=-2, keepdims=True))
    log_mel_128 = segments.log_mel
    mfcc = librosa.feature.mfcc(S=log_mel_128, n_mfcc=N_MFCC)
    delta = librosa.feature.delta(mfcc)
    delta2 = librosa.feature.delta(mfcc, order=2)
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0)
    tonnetz = librosa.feature.tonnetz(chroma=chroma, sr=sr)
    onset = librosa.onset.onset_strength(S=log_mel_128, sr=sr)  # [n, frames]
    tempogram = librosa.feature.tempogram(onset_envelope=onset, sr=sr, hop_length=HOP_LENGTH, win_length=TEMPOGRAM_FRAMES)
    bpm = librosa.tempo_frequencies(tempogram.shape[-2], sr=sr, hop_length=HOP_LENGTH)
    mean_tempogram = tempogram.mean(axis=-1)
    tempo_bands = [
        mean_tempogram[:, (bpm >= lo) & (bpm < hi)].mean(axis=-1)
        for lo, hi in zip(TEMPO_BAND_EDGES[:-1], TEMPO_BAND_EDGES[1:])
    ]
    columns = [
        *_stats(contrast), *_stats(flatness), *_stats(log_mel), *_stats(flux),
        delta.std(axis=-1), delta2.std(axis=-1), *_stats(tonnetz),
        onset.mean(axis=-1, keepdims=True), onset.std(axis=-1, keepdims=True), onset.max(axis=-1, keepdims=True),
        np.stack(tempo_bands, axis=-1),
    ]
    return np.concatenate([c.reshape(len(segments), -1) for c in columns], axis=1).astype(np.float64)


class TimbreRhythm:
    """The :data:`FEATURE_NAMES` of 22050 Hz segments."""

    name = "timbre-rhythm"
    version = "2"
    feature_names: list[str] = FEATURE_NAMES

    def extract(self, segments: Segments) -> np.ndarray:
        """Features of each segment: :class:`~genre_tagger.spectrum.Segments` of 22050 Hz
        audio in, float64 ``[n_segments, len(feature_names)]`` out."""
        rows = [batch_features(batch) for batch in spectrum.batches(segments)]
        return np.concatenate(rows) if rows else np.empty((0, len(FEATURE_NAMES)))


@hookimpl
def genre_tagger_feature_extractors() -> list[TimbreRhythm]:
    """The plugin hook: this module provides the ``timbre-rhythm`` feature extractor."""
    return [TimbreRhythm()]
