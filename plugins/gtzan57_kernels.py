"""The numba kernels behind :mod:`genre_tagger_plugins.gtzan57`: HPSS (median filters,
soft masks, inverse STFTs), spectral shape and zero-crossing rate, each doing librosa's
float operations in one pass (see that module's docstring for what each replaces)."""

from __future__ import annotations

import functools
from typing import Callable

import librosa  # cheap: librosa imports its submodules (and numba, scipy) on first use
import numpy as np

from genre_tagger.spectrum import HOP_LENGTH, N_FFT

__all__ = ["hpss_waveforms", "spectral_shape", "zero_crossing_rate"]


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


def hpss_waveforms(stft: np.ndarray, magnitude: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
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
def spectral_shape(magnitude, freq, roll_percent):
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
def zero_crossing_rate(block, frame_length, hop_length, n_frames):
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
