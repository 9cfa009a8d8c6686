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

- HPSS: scipy's median filters (31 frames for harmonic, 31 bins for percussive) were
  ~90 % of the time. :func:`_median_filter` keeps each line's window sorted as it slides,
  64 lines side by side so that the update vectorises (bit-identical medians), and
  :func:`_masked_spectra` fuses ``magphase`` and the two soft masks. The two inverse STFTs
  stay: the mean and variance of a waveform cannot be read off a masked, inconsistent
  STFT without error (Parseval's estimate of the variance is off by 1.5 % for the
  harmonic and 6 % for the percussive part in the median over GTZAN segments, up to
  40 %), and ``y - y_harm`` loses the percussive part of a pure tone to cancellation.
  :func:`_istft` does librosa's float operations for the whole batch in one pass, 2.5x
  faster than ``librosa.istft`` and bit for bit equal.
- centroid, bandwidth, rolloff (:func:`_spectral_shape`) and zero-crossing rate
  (:func:`_zero_crossing_rate`) in one pass each instead of many full-size temporaries.
- the chroma tuning estimate runs ``piptrack``'s peak picking on the bins it can report
  (150-4000 Hz) instead of all 1025.
- BLAS runs on one thread (:func:`_one_blas_thread`).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable

import librosa  # cheap: librosa imports its submodules (and numba, scipy) on first use
import numpy as np

from genre_tagger import spectrum
from genre_tagger.hookspecs import hookimpl
from genre_tagger.spectrum import HOP_LENGTH, N_FFT, Segments

SAMPLE_RATE = 22050
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


# HPSS: librosa.decompose.hpss(stft) with its defaults (kernel 31, power 2, margin 1), in
# numba. scipy.ndimage.median_filter selects the median of every 31-value window from
# scratch; here each line keeps its window sorted while it slides and 64 lines advance
# side by side, so the compiler vectorises the update. The median of a window is one of
# its values, so the result is bit for bit scipy's (the tests compare the features with
# reference_features, which calls librosa's hpss).

HPSS_KERNEL = 31  # librosa's default kernel_size, in frames (harmonic) and bins (percussive)
_LANES = 64  # lines filtered together: a multiple of the SIMD width, so the loops vectorise

# The numba kernels below are compiled when one of them is first called, not at import:
# every command imports this plugin (to register it), and importing numba takes about
# 0.2 s that a scan answered from the cache never needs.
_JIT_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)
_KERNELS: dict[str, Callable] = {}  # name -> Python function, in definition order


def _kernel(function: Callable) -> Callable:
    """``numba.njit(**_JIT_OPTIONS)(function)``, applied on the first call of any kernel.

    That first call binds every kernel's module-level name to its numba dispatcher, so
    kernels that call each other compile against dispatchers, as with ``@numba.njit``
    written at each definition; later calls go to the dispatchers directly.
    """
    _KERNELS[function.__name__] = function

    @functools.wraps(function)
    def first_call(*args):
        _jit_kernels()
        return globals()[function.__name__](*args)

    return first_call


@functools.cache
def _jit_kernels() -> None:
    import numba

    jit = numba.njit(**_JIT_OPTIONS)
    for name, function in _KERNELS.items():
        globals()[name] = jit(function)


@_kernel
def _reflect(i, n):
    """Index ``i`` of a line of length ``n`` extended like scipy.ndimage's mode "reflect"."""
    if n == 1:
        return 0
    period = 2 * n
    i = i % period
    if i >= n:
        i = period - 1 - i
    return i


@_kernel
def _slide_medians(pad, out, m):
    """Running medians of ``_LANES`` interleaved lines.

    ``pad`` is ``[(2 * HPSS_KERNEL + m - 1) * _LANES]``: ``HPSS_KERNEL`` rows of +inf, then
    the ``m + HPSS_KERNEL - 1`` samples of each extended line, lanes innermost. ``out``
    ``[m * _LANES]`` receives the median of each window. ``window`` holds each lane's
    current window sorted (row ``j`` = the ``j``-th smallest); every step drops the oldest
    value (the +inf rows fill the window first) and inserts the newest, without a branch,
    so that the loops over lanes vectorise.
    """
    width = HPSS_KERNEL
    lanes = _LANES
    half = width // 2
    # allocated here, not passed in: the compiler then knows they alias nothing
    window = np.full(width * lanes, np.inf, dtype=pad.dtype)
    spare = np.full(width * lanes, np.inf, dtype=pad.dtype)
    oldest = np.empty(lanes, dtype=pad.dtype)
    newest = np.empty(lanes, dtype=pad.dtype)
    for k in range(m + width - 1):
        for lane in range(lanes):
            oldest[lane] = pad[k * lanes + lane]
            newest[lane] = pad[(k + width) * lanes + lane]
        # spare[:width-1] = window without its (first) copy of the oldest value
        for j in range(width - 1):
            for lane in range(lanes):
                here = window[j * lanes + lane]
                above = window[j * lanes + lanes + lane]  # loaded unconditionally: no gather
                spare[j * lanes + lane] = here if here < oldest[lane] else above
        # window = spare with the newest value inserted (spare's last row stays +inf)
        for lane in range(lanes):
            first = spare[lane]
            window[lane] = first if first < newest[lane] else newest[lane]
        for j in range(1, width):
            for lane in range(lanes):
                here = spare[j * lanes + lane]
                low = here if here < newest[lane] else newest[lane]
                before = spare[j * lanes - lanes + lane]
                window[j * lanes + lane] = before if before > low else low
        if k >= width - 1:
            for lane in range(lanes):
                out[(k - width + 1) * lanes + lane] = window[half * lanes + lane]


@_kernel
def _median_filter(spec, along_time):
    """``scipy.ndimage.median_filter(spec, size=31 along one axis, mode="reflect")``.

    ``spec`` is ``[n, bins, frames]`` float32; ``along_time`` filters each bin over
    frames (harmonic), otherwise each frame over bins (percussive). Lines never cross
    segments. Needs lines of at least ``HPSS_KERNEL`` samples (see :func:`_hpss_spectra`).
    """
    n, n_bins, n_frames = spec.shape
    width = HPSS_KERNEL
    half = width // 2
    lanes = _LANES
    m = n_frames if along_time else n_bins
    per_segment = n_bins if along_time else n_frames
    n_lines = n * per_segment
    out = np.empty_like(spec)
    pad = np.full((2 * width + m - 1) * lanes, np.inf, dtype=spec.dtype)
    medians = np.empty(m * lanes, dtype=spec.dtype)
    segs = np.empty(lanes, dtype=np.int64)
    poss = np.empty(lanes, dtype=np.int64)
    for first in range(0, n_lines, lanes):
        for lane in range(lanes):
            line = min(first + lane, n_lines - 1)  # a short last group repeats its last line
            segs[lane] = line // per_segment
            poss[lane] = line - segs[lane] * per_segment
        for p in range(m + width - 1):
            src = _reflect(p - half, m)
            base = (width + p) * lanes
            if along_time:
                for lane in range(lanes):
                    pad[base + lane] = spec[segs[lane], poss[lane], src]
            else:
                for lane in range(lanes):
                    pad[base + lane] = spec[segs[lane], src, poss[lane]]
        _slide_medians(pad, medians, m)
        for lane in range(min(lanes, n_lines - first)):
            seg, pos = segs[lane], poss[lane]
            if along_time:
                for p in range(m):
                    out[seg, pos, p] = medians[p * lanes + lane]
            else:
                for p in range(m):
                    out[seg, p, pos] = medians[p * lanes + lane]
    return out


@_kernel
def _masked_spectra(stft_parts, magnitude, harm, perc):
    """librosa.decompose.hpss's soft masks (power 2, margin 1) applied to an STFT.

    All arrays flat: ``stft_parts`` ``[2 * size]`` the STFT as float32 (real, imaginary)
    pairs, ``magnitude`` its absolute value, ``harm``/``perc`` the median-filtered
    magnitudes. Element by element the same float32 operations as ``librosa.magphase``
    and ``librosa.util.softmask(..., split_zeros=True)``, without branches. Returns the
    harmonic and the percussive STFT, as float32 pairs ``[2 * size]`` each.
    """
    tiny = np.float32(np.finfo(np.float32).tiny)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    half = np.float32(0.5)
    size = magnitude.shape[0]
    out_harm = np.empty(2 * size, dtype=np.float32)
    out_perc = np.empty(2 * size, dtype=np.float32)
    for i in range(size):
        mag = magnitude[i]
        is_zero = one if mag == zero else zero
        mag_nonzero = mag + is_zero
        phase_re = stft_parts[2 * i] / mag_nonzero + is_zero
        phase_im = stft_parts[2 * i + 1] / mag_nonzero
        h = harm[i]
        p = perc[i]
        z = h if h > p else p
        bad = z < tiny
        z = one if bad else z
        rh = h / z
        rp = p / z
        rh = rh * rh
        rp = rp * rp
        mask_h = half if bad else rh / (rh + rp)
        mask_p = half if bad else rp / (rp + rh)
        ah = mag * mask_h
        ap = mag * mask_p
        out_harm[2 * i] = ah * phase_re
        out_harm[2 * i + 1] = ah * phase_im
        out_perc[2 * i] = ap * phase_re
        out_perc[2 * i + 1] = ap * phase_im
    return out_harm, out_perc


def _hpss_spectra(stft: np.ndarray, magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``librosa.decompose.hpss(stft)`` for ``stft`` ``[n, 1025, frames]`` (``magnitude`` = ``|stft|``)."""
    if stft.shape[-1] < HPSS_KERNEL:  # under 0.72 s: scipy extends lines shorter than the
        return librosa.decompose.hpss(stft)  # kernel in its own way; not worth mimicking
    magnitude = np.ascontiguousarray(magnitude, dtype=np.float32)
    harm = _median_filter(magnitude, True)
    perc = _median_filter(magnitude, False)
    stft = np.ascontiguousarray(stft, dtype=np.complex64)
    harm_parts, perc_parts = _masked_spectra(
        stft.reshape(-1).view(np.float32), magnitude.reshape(-1), harm.reshape(-1), perc.reshape(-1)
    )
    return harm_parts.view(np.complex64).reshape(stft.shape), perc_parts.view(np.complex64).reshape(stft.shape)


def _hpss_waveforms(stft: np.ndarray, magnitude: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``librosa.effects.hpss`` from an existing STFT ``[n, 1025, frames]`` and its magnitude.

    Median-filter separation (kernel 31 along time for harmonic, along frequency for
    percussive; the filters never cross segments), then inverse STFTs trimmed to
    ``n_samples``. Returns float32 ``(harmonic, percussive)``, each ``[n, n_samples]``.
    """
    stft_harm, stft_perc = _hpss_spectra(stft, magnitude)
    return _istft(stft_harm, n_samples), _istft(stft_perc, n_samples)


@functools.cache
def _synthesis(n_frames: int, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """librosa.istft's float64 Hann window ``[N_FFT]`` and its float32 window sum-square,
    trimmed to the centred output ``[n_samples]``."""
    window = librosa.filters.get_window("hann", N_FFT, fftbins=True)
    sum_square = librosa.filters.window_sumsquare(
        window="hann", n_frames=n_frames, n_fft=N_FFT, hop_length=HOP_LENGTH, dtype=np.float32
    )
    return window, librosa.util.fix_length(sum_square[N_FFT // 2 :], size=n_samples)


def _istft(stft: np.ndarray, n_samples: int) -> np.ndarray:
    """``librosa.istft(stft, n_fft=N_FFT, hop_length=HOP_LENGTH, length=n_samples,
    dtype=np.float32)`` for ``stft`` ``[n, 1025, frames]``: the same inverse FFTs, window
    and overlap-add order (so the same float32 waveform), in one call for the whole
    batch instead of librosa's Python loop over blocks of frames. Float32 ``[n, n_samples]``."""
    n_frames = min(stft.shape[-1], int(np.ceil((n_samples + 2 * (N_FFT // 2)) / HOP_LENGTH)))
    # frame by frame along the last axis, so that each frame's samples are contiguous
    frames = librosa.get_fftlib().irfft(np.swapaxes(stft[..., :n_frames], -1, -2), n=N_FFT, axis=-1)
    window, sum_square = _synthesis(n_frames, n_samples)
    return _overlap_add(np.ascontiguousarray(frames, dtype=np.float32), window, sum_square)


@_kernel
def _overlap_add(frames, window, sum_square):
    """librosa.istft's last steps for ``frames`` float32 ``[n, n_frames, N_FFT]`` (inverse
    FFTs of centred frames): window (float64 ``[N_FFT]``), overlap-add frame after frame
    into float32, drop the ``N_FFT // 2`` samples of centre padding, and divide by the
    window sum-square (float32 ``[n_samples]``) where it is not ~0."""
    n, n_frames, n_fft = frames.shape
    n_samples = sum_square.shape[0]
    tiny = np.finfo(np.float32).tiny
    padding = n_fft // 2
    hop = HOP_LENGTH
    out = np.empty((n, n_samples), dtype=np.float32)
    buffer = np.empty(n_fft + hop * (n_frames - 1), dtype=np.float32)
    for i in range(n):
        buffer[:] = 0
        for t in range(n_frames):
            start = t * hop
            for m in range(n_fft):
                buffer[start + m] = np.float32(buffer[start + m] + window[m] * frames[i, t, m])
        for k in range(n_samples):
            value = buffer[k + padding] if k + padding < buffer.shape[0] else np.float32(0)
            out[i, k] = value / sum_square[k] if sum_square[k] > tiny else value
    return out


# Frame-wise features in one pass each, with the very float operations of librosa's
# spectral_centroid / spectral_bandwidth / spectral_rolloff (normalize(S, norm=1) in
# float64 rounded to float32, float64 sums over bins, float32 cumulative energy) and of
# zero_crossing_rate (edge padding, |y| <= 1e-10 counts as 0, zero counts as positive),
# instead of many passes over [n, 1025, frames] temporaries.


@_kernel
def _spectral_shape(magnitude, freq, roll_percent):
    """Centroid, bandwidth (p=2) and rolloff (Hz) of every frame: float64 ``[n, 1, frames]`` each."""
    n, n_bins, n_frames = magnitude.shape
    tiny = np.float64(np.finfo(np.float32).tiny)
    centroid = np.zeros((n, 1, n_frames))
    bandwidth = np.zeros((n, 1, n_frames))
    rolloff = np.zeros((n, 1, n_frames))
    length = np.empty(n_frames)
    energy = np.empty(n_frames, dtype=np.float32)
    threshold = np.empty(n_frames, dtype=np.float32)
    found = np.empty(n_frames, dtype=np.bool_)
    for i in range(n):
        length[:] = 0.0
        energy[:] = 0.0
        for f in range(n_bins):
            for t in range(n_frames):
                length[t] += np.float64(magnitude[i, f, t])
                energy[t] += magnitude[i, f, t]
        for t in range(n_frames):
            if length[t] < tiny:
                length[t] = 1.0
            threshold[t] = roll_percent * energy[t]
            energy[t] = 0.0
            found[t] = False
        for f in range(n_bins):
            for t in range(n_frames):
                share = np.float32(magnitude[i, f, t] / length[t])
                centroid[i, 0, t] += freq[f] * np.float64(share)
                energy[t] += magnitude[i, f, t]
                if not found[t] and not energy[t] < threshold[t]:
                    found[t] = True
                    rolloff[i, 0, t] = freq[f]
        for f in range(n_bins):
            for t in range(n_frames):
                share = np.float32(magnitude[i, f, t] / length[t])
                deviation = abs(centroid[i, 0, t] - freq[f])
                bandwidth[i, 0, t] += np.float64(share) * (deviation * deviation)
        for t in range(n_frames):
            bandwidth[i, 0, t] = np.sqrt(bandwidth[i, 0, t])
    return centroid, bandwidth, rolloff


@_kernel
def _zero_crossing_rate(block, frame_length, hop_length, n_frames):
    """``librosa.feature.zero_crossing_rate(block)`` (centred frames): float64 ``[n, 1, frames]``."""
    n, n_samples = block.shape
    half = frame_length // 2
    out = np.empty((n, 1, n_frames))
    padded = n_samples + 2 * half
    counts = np.zeros(padded + 1, dtype=np.int64)  # counts[k] = crossings at positions < k
    for i in range(n):
        previous = False
        for k in range(padded):
            j = min(max(k - half, 0), n_samples - 1)  # mode="edge"
            negative = np.float64(block[i, j]) < -1e-10
            counts[k + 1] = counts[k] + (1 if (k > 0 and negative != previous) else 0)
            previous = negative
        for t in range(n_frames):
            start = t * hop_length
            # crossings at start+1 .. start+frame_length-1 (a frame's first sample never counts)
            out[i, 0, t] = (counts[start + frame_length] - counts[start + 1]) / frame_length
    return out


def _block_features(block: Segments, sr: int) -> np.ndarray:
    """Features of one batch of segments -> float64 ``[n, 57]``."""
    stft, magnitude, power = block.stft, block.magnitude, block.power  # shared with other extractors

    freq = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    centroid, bandwidth, rolloff = _spectral_shape(magnitude, freq, np.float32(0.85))

    log_mel = block.log_mel  # [n, 128, frames], what librosa's mfcc and onset_strength compute
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)

    harmonic, percussive = _hpss_waveforms(stft, magnitude, block.n_samples)

    return _assemble(
        _chroma(power, sr),
        librosa.feature.rms(y=block.samples, frame_length=N_FFT, hop_length=HOP_LENGTH),
        centroid,
        bandwidth,
        rolloff,
        _zero_crossing_rate(block.samples, N_FFT, HOP_LENGTH, stft.shape[-1]),
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
    sample_rate = SAMPLE_RATE

    def extract(self, segments: Segments | np.ndarray) -> np.ndarray:
        """Features of each segment.

        Parameters
        ----------
        segments : float32 ``[n_segments, n_samples]`` at 22050 Hz, or
            :class:`~genre_tagger.spectrum.Segments`; any ``n_samples`` (66149 = 3 s
            gives ``features_3_sec.csv``, a whole clip as one row gives
            ``features_30_sec.csv``).

        Returns
        -------
        float64 ``[n_segments, 57]``, columns in :attr:`feature_names` order; row ``i``
        equals :func:`reference_features` ``(segments[i])`` up to float32 rounding.
        """
        rows = []
        with _one_blas_thread():
            for batch in spectrum.batches(segments):
                rows.append(_block_features(batch, self.sample_rate))
        return np.concatenate(rows) if rows else np.empty((0, len(FEATURE_NAMES)))


@hookimpl
def genre_tagger_feature_extractors() -> list[Gtzan57]:
    """The plugin hook: this module provides the ``gtzan57`` feature extractor."""
    return [Gtzan57()]
