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
  (:class:`genre_tagger.spectrum.Segments`, shared with the other extractors that read
  the same batch) for every spectral feature, chroma, mel/MFCC, onset/tempo and HPSS, and with
  statistics vectorised over the batch. Wherever librosa derives something from a whole
  array (``power_to_db``'s ``top_db`` floor, ``chroma_stft``'s tuning estimate), it is
  derived per segment here, so each row equals the per-segment reference up to float32
  rounding.

Statistics are accumulated in float64 in both implementations.

Where the time goes in :meth:`Gtzan57.extract`, and what replaces librosa there (each
replacement does the same float operations as librosa, so results agree with librosa to
float rounding; most are bit for bit):

The numba kernels are in :mod:`genre_tagger_plugins.gtzan57_kernels`:

- HPSS: scipy's median filters (31 frames for harmonic, 31 bins for percussive) were
  ~90 % of the time. ``_median_filter`` keeps each line's window sorted as it slides,
  64 lines side by side so that the update vectorises (bit-identical medians), and
  ``_masked_spectra`` fuses ``magphase`` and the two soft masks. The two inverse STFTs
  stay: the mean and variance of a waveform cannot be read off a masked, inconsistent
  STFT without error (Parseval's estimate of the variance is off by 1.5 % for the
  harmonic and 6 % for the percussive part in the median over GTZAN segments, up to
  40 %), and ``y - y_harm`` loses the percussive part of a pure tone to cancellation.
  ``_istft`` does librosa's float operations for the whole batch in one pass, 2.5x
  faster than ``librosa.istft`` and bit for bit equal.
- centroid, bandwidth, rolloff (``spectral_shape``) and zero-crossing rate
  (``zero_crossing_rate``) in one pass each instead of many full-size temporaries.
- the chroma tuning estimate runs ``piptrack``'s peak picking on the bins it can report
  (150-4000 Hz) instead of all 1025.
- BLAS runs on one thread (:func:`_one_blas_thread`).
"""

from __future__ import annotations

import contextlib
import functools

import librosa  # cheap: librosa imports its submodules (and numba, scipy) on first use
import numpy as np

from genre_tagger import spectrum
from genre_tagger.hookspecs import hookimpl
from genre_tagger.segments import SAMPLE_RATE
from genre_tagger.spectrum import HOP_LENGTH, N_FFT, Segments
from genre_tagger_plugins.gtzan57_kernels import hpss_waveforms, spectral_shape, zero_crossing_rate
N_MFCC = 20
N_CHROMA = 12
PIPTRACK_FMIN, PIPTRACK_FMAX = 150.0, 4000.0  # librosa.piptrack's defaults, as estimate_tuning uses them

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


def _tuning_per_segment(power: np.ndarray, sr: int) -> np.ndarray:
    """``librosa.estimate_tuning(S=power[i], sr=sr, bins_per_octave=12)`` for every ``i``.

    ``power`` is ``[n, 1025, frames]``; returns ``[n]`` tunings in fractions of a chroma
    bin. The peak picking is ``librosa.piptrack``'s (defaults: 150 <= f < 4000 Hz, peaks
    above 0.1 x the frame's maximum) with the same float operations, but only on the bins
    it can report (and one neighbour each side) rather than on all 1025. The magnitude
    threshold (a median) and the histogram are per segment, as in librosa.
    """
    from librosa.core.pitch import _parabolic_interpolation  # piptrack's own stencil

    fft_freqs = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    band = np.flatnonzero((PIPTRACK_FMIN <= fft_freqs) & (fft_freqs < min(PIPTRACK_FMAX, float(sr) / 2)))
    first, last = int(band[0]), int(band[-1])
    spec = np.abs(power[:, first - 1 : last + 2])  # the band and one neighbour each side
    ref_value = 0.1 * np.max(power, axis=-2, keepdims=True)  # piptrack's threshold * np.max
    avg = np.gradient(spec, axis=-2)
    shift = _parabolic_interpolation(spec, axis=-2)
    dskew = 0.5 * avg * shift
    peaks = librosa.util.localmax(spec * (spec > ref_value), axis=-2)[:, 1:-1]
    seg, row, frame = np.nonzero(peaks)
    inner = (seg, row + 1, frame)
    pitch = ((row + first) + shift[inner]) * float(sr) / N_FFT
    pitch = pitch.astype(power.dtype)  # piptrack stores them in an array like S
    mag = spec[inner] + dskew[inner]
    bounds = np.searchsorted(seg, np.arange(len(power) + 1))
    tunings = np.zeros(len(power))
    for i in range(len(power)):
        pitch_i, mag_i = pitch[bounds[i] : bounds[i + 1]], mag[bounds[i] : bounds[i + 1]]
        pitch_mask = pitch_i > 0
        if not pitch_mask.any():
            continue  # silence: librosa returns 0.0 (with a warning)
        threshold = np.median(mag_i[pitch_mask])
        tunings[i] = librosa.pitch_tuning(pitch_i[(mag_i >= threshold) & pitch_mask], bins_per_octave=N_CHROMA)
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
    for i, tuning in enumerate(tunings):  # chroma_stft's own einsum, segment by segment
        raw[i] = np.einsum("cf,ft->ct", _chroma_basis(sr, float(tuning)), power[i], optimize=True)
    return librosa.util.normalize(raw, norm=np.inf, axis=-2)


def _tempo(log_mel: np.ndarray, sr: int) -> np.ndarray:
    """``librosa.feature.tempo`` (BPM, ``[n]``) from per-segment log-mel ``[n, 128, frames]``."""
    onset_envelope = librosa.onset.onset_strength(S=log_mel, sr=sr, n_fft=N_FFT, hop_length=HOP_LENGTH)
    return librosa.feature.tempo(onset_envelope=onset_envelope, sr=sr, hop_length=HOP_LENGTH)[..., 0]


def _block_features(block: Segments, sr: int) -> np.ndarray:
    """Features of one batch of segments -> float64 ``[n, 57]``."""
    stft, magnitude, power = block.stft, block.magnitude, block.power  # shared with other extractors

    freq = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    centroid, bandwidth, rolloff = spectral_shape(magnitude, freq, np.float32(0.85))

    log_mel = block.log_mel  # [n, 128, frames], what librosa's mfcc and onset_strength compute
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)

    harmonic, percussive = hpss_waveforms(stft, magnitude, block.n_samples)

    return _assemble(
        _chroma(power, sr),
        librosa.feature.rms(y=block.samples, frame_length=N_FFT, hop_length=HOP_LENGTH),
        centroid,
        bandwidth,
        rolloff,
        zero_crossing_rate(block.samples, N_FFT, HOP_LENGTH, stft.shape[-1]),
        harmonic,
        percussive,
        _tempo(log_mel, sr),
        mfcc,
    )


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS (found once: ~1 ms), or None without it."""
    try:
        from threadpoolctl import ThreadpoolController  # installed with scikit-learn
    except ImportError:
        return None
    return ThreadpoolController()


def _one_blas_thread():
    """Run BLAS single-threaded: the matrix products here are small (a mel or chroma bank
    times one block), and OpenBLAS threads spinning against other work on the same cores
    made them up to 80x slower (measured with 2 threads on a busy 2-core machine)."""
    controller = _blas_controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


class Gtzan57:
    """The 57 Kaggle GTZAN features (:data:`FEATURE_NAMES`) of 22050 Hz segments."""

    name = "gtzan57"
    version = "1"
    feature_names: list[str] = FEATURE_NAMES

    def extract(self, segments: Segments) -> np.ndarray:
        """Features of each segment.

        Parameters
        ----------
        segments : :class:`~genre_tagger.spectrum.Segments` of 22050 Hz audio; any
            ``n_samples`` (66149 = 3 s gives ``features_3_sec.csv``, a whole clip as one
            row gives ``features_30_sec.csv``).

        Returns
        -------
        float64 ``[n_segments, 57]``, columns in :attr:`feature_names` order; row ``i``
        equals :func:`reference_features` ``(segments[i])`` up to float32 rounding.
        """
        rows = []
        with _one_blas_thread():
            for batch in spectrum.batches(segments):
                rows.append(_block_features(batch, SAMPLE_RATE))
        return np.concatenate(rows) if rows else np.empty((0, len(FEATURE_NAMES)))


@hookimpl
def genre_tagger_feature_extractors() -> list[Gtzan57]:
    """The plugin hook: this module provides the ``gtzan57`` feature extractor."""
    return [Gtzan57()]
