"""Decoding audio files to 22050 Hz mono float32, with no system program.

Every model in genre-tagger listens to the same signal: mono, 22050 Hz, float32 in
[-1, 1], exactly what ``librosa.load(path)`` returns. This module produces it from any
common music file through PyAV, whose wheel bundles the FFmpeg libraries (mp3, flac,
ogg/vorbis, opus, m4a/aac, wav in every sample format, aiff, au), so neither ffmpeg nor
any other program has to be installed.

The pipeline, one decoded frame at a time (memory stays bounded, whatever the length):

    file --PyAV--> frames --_frame_to_mono--> float32 mono --soxr--> 22050 Hz chunks
         (demux, decode)    (scale ints, mean of channels)  (streaming) --> stream()/load()

Map of the public API:

- :data:`SAMPLE_RATE`, :data:`AUDIO_EXTENSIONS`
- :func:`probe` -- duration, sample rate, channels, codec from the header (no decode)
- :func:`stream` -- fixed-size blocks of samples, for long files
- :func:`load` -- the whole track as one array
- :class:`AudioError` -- every failure, as one line a user understands

Choices worth knowing:

- **Exactness.** Integer PCM is scaled like libsndfile (which ``soundfile`` and
  ``librosa`` use): ``s16 / 2**15``, ``s32 / 2**31`` (24-bit samples arrive as s32),
  ``(u8 - 128) / 2**7``, computed in float32. Channels are averaged like
  ``librosa.to_mono``. A file already at 22050 Hz is not resampled, so a lossless file
  decodes bit for bit to what ``soundfile.read(path, dtype="float32")`` returns.
  (PyAV's ``AudioResampler(format="fltp")`` gives the same numbers, but it refuses
  frames whose format changes mid-file; converting each frame ourselves does not.)
- **Resampling** uses soxr "HQ", the filter behind librosa's default ``res_type``
  ("soxr_hq"), in streaming mode; samples agree with ``librosa.load`` to float
  rounding, and lengths within a sample.
- **Damaged files.** Like the ``ffmpeg`` command line, a packet the decoder rejects is
  skipped and decoding goes on; a file that ends early (a truncated download) yields
  the part that is there; a read error after some audio (a damaged container, or a
  chained Ogg whose second part FFmpeg cannot read) ends decoding and keeps what came
  before. Skipped packets and early stops are logged as warnings. A file that yields
  no sample at all -- garbage, a text file, a header with no audio -- is an
  :class:`AudioError`, as is a truncated file whose index sat at its end (an m4a
  written without "faststart" cannot be opened once cut).
- **Codec padding** is removed where the file says how much there is (LAME/Xing
  headers in mp3, Opus pre-skip, Ogg end granule, mp4 edit lists); otherwise it stays:
  up to 2048 samples (~90 ms) of AAC priming and padding in an m4a without an edit
  list, and a few hundred samples (~15 ms) at the end of some Ogg Vorbis files where
  FFmpeg trims less than libvorbis does.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import av
import numpy as np
import soxr
from av.audio.plane import AudioPlane

from genre_tagger.pipeline.files import NotRegularFile, open_regular
from genre_tagger.segments import SAMPLE_RATE

__all__ = ["AUDIO_EXTENSIONS", "SAMPLE_RATE", "AudioError", "Info", "load", "probe", "stream"]

log = logging.getLogger(__name__)

#: File name extensions (lowercase, with the dot) treated as audio when scanning folders.
#: Compare case-insensitively: ``path.suffix.lower() in AUDIO_EXTENSIONS``.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wav", ".aif", ".aiff", ".au"}
)

#: sample rates (Hz) a music file can have: a stream claiming less is damaged or hostile
#: (a 1 Hz stream resamples to days of audio), and no format goes above
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 384_000
#: the longest a track may be; longer is a damaged header, not music to tag
MAX_DURATION_S = 24 * 3600
#: the longest one decoded frame may be: codecs use a fraction of a second, FLAC at most 8 s
MAX_FRAME_S = 30

# soxr quality matching librosa's default res_type "soxr_hq"
_SOXR_QUALITY = "HQ"

# How libsndfile turns integer samples into float: divide by 2**(bits - 1), after
# moving unsigned 8-bit samples to be centred on zero. Sample format names are FFmpeg's
# with the planar "p" suffix removed; 24-bit audio is decoded to s32, shifted left.
_INT_OFFSET_AND_SCALE: dict[str, tuple[int, float]] = {
    "u8": (128, 2.0**-7),
    "s16": (0, 2.0**-15),
    "s32": (0, 2.0**-31),
    "s64": (0, 2.0**-63),
}


#: FFmpeg's sample formats (the planar "p" suffix removed), as numpy reads them
_SAMPLE_DTYPES: dict[str, np.dtype] = {
    "u8": np.dtype(np.uint8), "s16": np.dtype(np.int16), "s32": np.dtype(np.int32), "s64": np.dtype(np.int64),
    "flt": np.dtype(np.float32), "dbl": np.dtype(np.float64),
}
#: the loudest floating-point sample analysed: music is mastered to full scale (1.0), and
#: a float file may overshoot it a little; 1000 times it (+60 dB) is damaged data, whose
#: spectra would overflow float32
MAX_FLOAT_PEAK = 1000.0


class AudioError(Exception):
    """A file that cannot be opened or decoded. ``str(e)`` is one line: ``"<path>: <reason>"``.

    ``path`` is the file as the caller named it, ``reason`` the cause in plain words.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}".replace("\r", " ").replace("\n", " "))


@dataclass(frozen=True)
class Info:
    """What a file's header says about its first audio stream.

    ``duration_s`` is in seconds, ``None`` when the container does not say (it may be
    an estimate, e.g. for a variable-bitrate mp3 without a Xing header);
    ``sample_rate`` is in Hz, before resampling to :data:`SAMPLE_RATE`; ``codec`` is
    FFmpeg's short codec name ("mp3", "flac", "vorbis", "opus", "aac", "pcm_s16le", ...).
    """

    duration_s: float | None
    sample_rate: int
    channels: int
    codec: str


def probe(path: str | os.PathLike[str]) -> Info:
    """Read duration, sample rate, channel count and codec from the header of ``path``.

    Nothing is decoded beyond the few packets FFmpeg reads to identify the stream, so
    this is cheap enough to total the audio hours of a whole library.
    Raises :class:`AudioError`.
    """
    with _open(path) as (container, audio):
        return Info(
            duration_s=_duration_s(container, audio),
            sample_rate=audio.codec_context.sample_rate,
            channels=audio.codec_context.layout.nb_channels,
            codec=audio.codec_context.codec.canonical_name,
        )


def stream(path: str | os.PathLike[str], block_samples: int,
           only: Sequence[tuple[int, int]] | None = None) -> Iterator[np.ndarray]:
    """Decode ``path`` incrementally to blocks of 22050 Hz mono float32 samples.

    Every block is a new float32 array of shape ``[block_samples]`` except the last,
    which holds the remaining ``1..block_samples`` samples; a file yields at least one
    sample or raises. Memory use is bounded by ``block_samples`` plus one decoded frame,
    however long the file. The file is opened when iteration starts, so
    :class:`AudioError` is raised from the first ``next()``, or later for a file that
    turns out to hold no audio.

    With ``only`` (``[(start, stop), ...]`` in samples at 22050 Hz), the samples away
    from those spans are zeros, and positions and lengths are exactly those of a full
    decode: only the frames near a span are converted to floats, mixed to mono and
    resampled, and of mp3, FLAC and Opus files only the packets near a span are decoded at all
    (:data:`SKIPPABLE_CODECS`). Inside the spans the samples are those of a full decode
    (to float rounding, see :data:`SPAN_MARGIN_S` and :data:`DECODE_PREROLL_S`).
    """
    if block_samples < 1:
        raise ValueError(f"block_samples must be at least 1, got {block_samples}")
    block = np.empty(block_samples, dtype=np.float32)
    filled = 0
    for chunk in _mono_chunks(path, only):
        while len(chunk):
            take = min(block_samples - filled, len(chunk))
            block[filled : filled + take] = chunk[:take]
            filled += take
            chunk = chunk[take:]
            if filled == block_samples:
                yield block
                block = np.empty(block_samples, dtype=np.float32)
                filled = 0
    if filled:
        yield block[:filled].copy()


def load(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode all of ``path`` to 22050 Hz mono float32 samples, shape ``[n_samples]``.

    The same samples as ``np.concatenate(list(stream(path, n)))`` for any ``n``.
    Raises :class:`AudioError`.
    """
    return np.concatenate(list(_mono_chunks(path)))


# --- decoding ---------------------------------------------------------------------------


#: how far beyond a span of :func:`stream`'s ``only`` frames are still converted: the
#: resampler's filter (a few milliseconds) then never sees the zeros around a span
SPAN_MARGIN_S = 0.1


#: how long before a span packets are decoded again after some were not (see
#: :func:`_mono_chunks`): a decoder that skipped packets needs a few frames to settle
DECODE_PREROLL_S = 0.5
#: codecs whose packets far from every span need not be decoded at all: each decodes to
#: as many samples as its duration says (checked on each file, see _mono_chunks), and a
#: few frames after a skip the decoder gives what a full decode gives -- AAC within a
#: tolerance: its noise substitution draws from a generator that every frame advances, so
#: after a skip the substituted noise differs (RMS of the difference under 2 % of the
#: signal's; research/check_aac_spans.py: no genre changes). Not Vorbis: Ogg gives its
#: packets durations that are not what they decode to (its blocks vary in length), so
#: skipping them loses samples
SKIPPABLE_CODECS = frozenset({"mp3", "flac", "opus", "aac"})
#: the packets this close to the end of a file (by its header) are always decoded: the
#: last one holds fewer samples than its duration (the encoder's padding)
END_GUARD_S = 2.0


def _needed(spans: Sequence[tuple[int, int]] | None, before: float = SPAN_MARGIN_S,
            after: float = SPAN_MARGIN_S) -> Callable[[float, float], bool]:
    """Whether a frame or packet from ``start`` to ``stop`` (seconds) lies within
    ``before`` seconds before or ``after`` seconds after one of ``spans``; they are asked
    about in the order they come, so the spans behind them are dropped."""
    if spans is None:
        return lambda start, stop: True
    bounds = sorted((a / SAMPLE_RATE - before, b / SAMPLE_RATE + after) for a, b in spans)

    def needed(start: float, stop: float) -> bool:
        while bounds and bounds[0][1] <= start:  # a span wholly before this frame
            bounds.pop(0)
        return any(start < high and stop > low for low, high in bounds[:2])

    return needed


def _mono_chunks(path: str | os.PathLike[str], only: Sequence[tuple[int, int]] | None = None) -> Iterator[np.ndarray]:
    """Yield the file as float32 mono chunks at SAMPLE_RATE, of whatever sizes come
    (zeros for frames far from the spans ``only``, see :func:`stream`).

    Skips packets the decoder rejects; stops at a read error after some audio (a
    damaged file, or a chained Ogg whose second part FFmpeg cannot read), keeping what
    was decoded; raises AudioError when no sample at all comes out.
    """
    needed = _needed(only)
    seconds = 0.0  # where the next frame starts
    n_samples = 0
    n_skipped, skip_reason = 0, ""  # packets the decoder rejected, and FFmpeg's last words why
    stopped_by: str | None = None  # the read error that ended decoding early
    with _open(path) as (container, audio):
        resample = _Resampler()
        skippable = _skippable_packets(only, container, audio)
        packets = container.demux(audio)
        n_packets = n_data_packets = 0
        while True:
            try:
                packet = next(packets)  # the last packet is empty and flushes the decoder
            except StopIteration:
                break
            except (av.FFmpegError, OSError) as error:
                if n_samples == 0:
                    raise AudioError(path, f"cannot decode: {_ffmpeg_reason(error)}") from None
                stopped_by = _ffmpeg_reason(error)
                break
            n_packets += 1
            n_data_packets += packet.size > 0
            if skippable is not None and (skipped := skippable(packet, n_packets, seconds)):
                chunk = resample.skip(skipped, audio.codec_context.sample_rate)  # what the filter still held
                seconds += skipped / audio.codec_context.sample_rate
                n_samples += len(chunk)
                if len(chunk):
                    yield chunk
                continue  # (only packets within the header's duration are skipped: see _skippable_packets)
            try:
                frames = audio.decode(packet)
            except av.FFmpegError as error:
                n_skipped, skip_reason = n_skipped + 1, _ffmpeg_reason(error)
                continue
            if skippable is not None and n_packets == 2 and sum(f.samples for f in frames) != _samples_of(audio)(packet):
                skippable = None  # its packets do not decode to what their durations say: decode them all
            for frame in frames:
                _check_frame(path, frame)
                length = frame.samples / frame.sample_rate
                if needed(seconds, seconds + length):
                    chunk = resample(_frame_to_mono(path, frame), frame.sample_rate)
                else:
                    chunk = resample.skip(frame.samples, frame.sample_rate)
                seconds += length
                n_samples += len(chunk)
                if n_samples > MAX_DURATION_S * SAMPLE_RATE:
                    raise AudioError(path, f"decodes to more than {MAX_DURATION_S // 3600} hours of audio: refused")
                if len(chunk):
                    yield chunk
        chunk = resample.flush()
        n_samples += len(chunk)
        if len(chunk):
            yield chunk

    if n_samples == 0 and n_data_packets == 0:
        raise AudioError(path, "holds no audio: a valid header with no samples (0 s of audio)")
    if n_samples == 0:
        reason = "no audio could be decoded (not an audio file, or damaged)"
        if n_skipped:
            reason += f": {skip_reason}"
        raise AudioError(path, reason)
    if n_skipped:
        log.warning("%s: skipped %d undecodable packet(s) (%s)", path, n_skipped, skip_reason)
    if stopped_by:
        log.warning("%s: reading stopped after %.1f s (%s)", path, n_samples / SAMPLE_RATE, stopped_by)


def _samples_of(audio: av.AudioStream) -> Callable[[av.Packet], int]:
    """``samples(packet)``: how many samples a demuxed packet of ``audio`` says it holds, at
    the decoder's rate (0 when it does not say). A demuxed packet has its stream's time
    base, read here once: each read of a packet's makes a Fraction, which cost a 4-minute
    mp3's 9000 packets more than decoding its spans."""
    if audio.time_base is None:
        return lambda packet: 0
    per_tick = audio.time_base.numerator * audio.codec_context.sample_rate
    ticks = audio.time_base.denominator
    return lambda packet: round(packet.duration * per_tick / ticks) if packet.duration else 0


def _skippable_packets(only: Sequence[tuple[int, int]] | None, container: av.container.InputContainer,
                       audio: av.AudioStream) -> Callable[[av.Packet, int, float], int] | None:
    """For :func:`stream`'s ``only``: ``skippable(packet, number, seconds)``, how many samples
    a packet that need not be decoded holds (0: decode it), or ``None`` when every packet is
    to be decoded. A packet is skipped when its codec's packets all decode to the samples
    their durations say (:data:`SKIPPABLE_CODECS`; checked on the second packet), it is
    neither of the first two (the first may hold the encoder's delay, the second is the
    one checked) nor within
    :data:`END_GUARD_S` of the end, and it ends more than :data:`DECODE_PREROLL_S` before
    the next span (after a skip the decoder needs a few frames to settle) or starts after
    the last."""
    duration = _duration_s(container, audio)
    if only is None or duration is None or audio.codec_context.codec.canonical_name not in SKIPPABLE_CODECS:
        return None
    decoded = _needed(only, before=DECODE_PREROLL_S + SPAN_MARGIN_S)
    samples_of, rate = _samples_of(audio), audio.codec_context.sample_rate

    def skippable(packet: av.Packet, number: int, seconds: float) -> int:
        samples = samples_of(packet)
        length = samples / rate
        if number <= 2 or not samples or seconds + length > duration - END_GUARD_S or decoded(seconds, seconds + length):
            return 0
        return samples

    return skippable


def _check_rate(path: str | os.PathLike[str], rate: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(path, f"its sample rate of {rate} Hz is outside {MIN_SAMPLE_RATE // 1000}-"
                               f"{MAX_SAMPLE_RATE // 1000} kHz: refused (a damaged header, or not music)")


def _check_frame(path: str | os.PathLike[str], frame: av.AudioFrame) -> None:
    """Refuse a frame no music file holds, before anything is made of it."""
    _check_rate(path, frame.sample_rate)
    if frame.samples > MAX_FRAME_S * frame.sample_rate:
        raise AudioError(path, f"a decoded frame of {frame.samples / frame.sample_rate:.0f} s: refused (damaged)")


def _frame_to_mono(path: str | os.PathLike[str], frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as float32 mono ``[frame.samples]`` at the frame's own rate."""
    channels = frame.layout.nb_channels
    if channels < 1:
        raise AudioError(path, f"a decoded frame of {channels} channels: refused (a damaged header, or not music)")
    samples = _to_float32(_frame_samples(frame), frame.format.name.removesuffix("p"))
    if samples.dtype.kind == "f":
        if not np.isfinite(samples).all():
            raise AudioError(path, "its audio holds NaN or infinite samples (damaged floating-point data): not analysed")
        peak = float(np.abs(samples).max(initial=0.0))
        if peak > MAX_FLOAT_PEAK:
            raise AudioError(path, f"its floating-point samples reach {peak:.3g}, far beyond full scale (1.0): "
                                   "damaged, or not audio: not analysed")
    # like librosa.to_mono: the mean of the channels, in float32
    return samples[0] if channels == 1 else samples.mean(axis=0)


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """The frame's samples as ``[channels, n]`` in its own sample format.

    What ``frame.to_ndarray()`` returns, without its faults: PyAV counts a planar frame's
    planes by reading its channel pointers up to a null one, which runs past the end of
    the array from 8 channels on (a 7.1 Opus or AAC file crashed the process), and it
    knows no 64-bit integer samples. Here exactly one plane per channel is read."""
    dtype = _SAMPLE_DTYPES[frame.format.name.removesuffix("p")]
    channels = frame.layout.nb_channels
    if frame.format.is_planar:
        return np.vstack([np.frombuffer(AudioPlane(frame, index), dtype=dtype, count=frame.samples)
                          for index in range(channels)])
    packed = np.frombuffer(AudioPlane(frame, 0), dtype=dtype, count=frame.samples * channels)
    return packed.reshape(-1, channels).T


def _to_float32(samples: np.ndarray, sample_format: str) -> np.ndarray:
    """Samples of FFmpeg's ``sample_format`` ("s16", "flt", ...) as float32 in [-1, 1]."""
    if sample_format in _INT_OFFSET_AND_SCALE:
        offset, scale = _INT_OFFSET_AND_SCALE[sample_format]
        floats = samples.astype(np.float32)  # exact below 2**24; rounds like libsndfile above
        if offset:
            floats -= offset
        floats *= np.float32(scale)  # a power of two: exact
        return floats
    if sample_format in ("flt", "dbl"):
        return samples.astype(np.float32, copy=False)
    raise ValueError(f"unknown sample format {sample_format!r}")  # FFmpeg has no other


_NOTHING = np.empty(0, dtype=np.float32)
_NOTHING.flags.writeable = False


class _Resampler:
    """Streams mono chunks from the decoder's rate to SAMPLE_RATE with soxr, and stands
    zeros in for the chunks that are not needed.

    Chunks already at SAMPLE_RATE pass through untouched (bit-exact). Should the rate
    change in mid-file, the current filter is flushed and a new one started (a new
    *part*). :meth:`skip` stands for samples that are not needed: the filter is flushed,
    and zeros take their place, as many as resampling them would have made. The next
    chunk starts a new filter at its first sample whose position at 22050 Hz is a whole
    number, so every sample after it lies exactly where a full resampling puts it (soxr
    streams are delay-compensated: output sample ``j`` of a filter started at input
    sample ``s`` is at time ``s / rate + j / 22050``).
    """

    def __init__(self) -> None:
        self._rate: int | None = None
        self._soxr: soxr.ResampleStream | None = None
        self._part_in = 0  # input samples of the current part so far
        self._part_out = 0  # output samples of the current part given out so far
        self._drop = 0  # output samples of the current filter that overlap what was given out

    def __call__(self, chunk: np.ndarray, rate: int) -> np.ndarray:
        """``chunk`` (float32 mono at ``rate`` Hz) at SAMPLE_RATE, after the zeros that
        stand for skipped samples before it; soxr may hold some samples back."""
        pieces = [self._new_part(rate)]
        start, self._part_in = self._part_in, self._part_in + len(chunk)
        if rate == SAMPLE_RATE:
            pieces += [self._zeros_to(start), chunk]
            self._part_out = self._part_in
        else:
            if self._soxr is None:
                step = rate // math.gcd(rate, SAMPLE_RATE)  # input samples whose output position is whole
                first = -(-start // step) * step
                if first >= self._part_in:  # no such sample in this chunk: it stands as skipped
                    return np.concatenate(pieces)
                chunk = chunk[first - start:]
                position = first * SAMPLE_RATE // rate
                pieces.append(self._zeros_to(position))
                self._drop = self._part_out - position
                self._soxr = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality=_SOXR_QUALITY)
            pieces.append(self._given(self._soxr.resample_chunk(chunk)))
        return np.concatenate(pieces)

    def skip(self, n_samples: int, rate: int) -> np.ndarray:
        """Stand ``n_samples`` at ``rate`` Hz that are not needed; returns what the filter still held."""
        if rate == self._rate and self._soxr is None:  # skipping on: nothing to flush
            self._part_in += n_samples
            return _NOTHING
        pieces = [self._new_part(rate), self._end_filter()]
        self._part_in += n_samples
        return np.concatenate(pieces)

    def flush(self) -> np.ndarray:
        """The samples still inside the filter, and zeros for the skipped samples at the
        end; the resampler is then reset."""
        if self._rate is None:
            return np.empty(0, dtype=np.float32)
        tail = self._end_filter()
        n_out = self._part_in if self._rate == SAMPLE_RATE else _resampled_length(self._part_in, self._rate)
        zeros = self._zeros_to(n_out)
        self._rate, self._part_in, self._part_out = None, 0, 0
        return np.concatenate([tail, zeros])

    def _new_part(self, rate: int) -> np.ndarray:
        """At a change of rate, the end of the part before (see :meth:`flush`)."""
        if rate == self._rate:
            return np.empty(0, dtype=np.float32)
        tail = self.flush()
        self._rate = rate
        return tail

    def _end_filter(self) -> np.ndarray:
        if self._soxr is None:
            return np.empty(0, dtype=np.float32)
        tail = self._given(self._soxr.resample_chunk(np.empty(0, dtype=np.float32), last=True))
        self._soxr = None
        return tail

    def _given(self, out: np.ndarray) -> np.ndarray:
        """``out`` of the current filter, less what overlaps samples already given out."""
        if self._drop > 0:
            dropped = min(self._drop, len(out))
            out, self._drop = out[dropped:], self._drop - dropped
        self._part_out += len(out)
        return out

    def _zeros_to(self, position: int) -> np.ndarray:
        """Zeros from the samples given out so far up to ``position`` of the current part."""
        zeros = np.zeros(max(0, position - self._part_out), dtype=np.float32)
        self._part_out += len(zeros)
        return zeros


def _resampled_length(n_samples: int, rate: int) -> int:
    """How many samples soxr makes of ``n_samples`` at ``rate``: ``n * 22050 / rate``
    rounded, halves up."""
    return (2 * n_samples * SAMPLE_RATE + rate) // (2 * rate)


# --- opening, and errors in words ----------------------------------------------------------


@contextmanager
def _open(path: str | os.PathLike[str]) -> Iterator[tuple[av.container.InputContainer, av.AudioStream]]:
    """``with _open(path) as (container, audio_stream):`` -- or AudioError saying why not.

    The file is opened by Python and handed to FFmpeg as a file object, so a file name
    is never taken for a URL or protocol ("http:...", "concat:...").
    """
    try:
        file = open_regular(path)  # never blocks on a FIFO that took a file's place
    except OSError as error:
        raise AudioError(path, _os_reason(error)) from None
    with file:
        if os.fstat(file.fileno()).st_size == 0:
            raise AudioError(path, "empty file")
        try:
            container = av.open(file, metadata_errors="replace")  # broken tags must not stop us
        except (av.FFmpegError, OSError) as error:
            raise AudioError(path, _open_reason(error)) from None
        with container:
            if not container.streams.audio:
                raise AudioError(path, "not an audio file (no audio stream found)")
            audio = container.streams.audio[0]
            if audio.codec_context is None:
                raise AudioError(path, "cannot decode: FFmpeg has no decoder for its audio codec")
            if not audio.codec_context.sample_rate:
                raise AudioError(path, "not an audio file, or damaged (its audio stream has no sample rate)")
            _check_rate(path, audio.codec_context.sample_rate)
            duration = _duration_s(container, audio)
            if duration is not None and duration > MAX_DURATION_S:
                raise AudioError(path, f"its header claims {duration / 3600:.0f} hours of audio, more than "
                                       f"{MAX_DURATION_S // 3600}: refused (a damaged header?)")
            yield container, audio


def _duration_s(container: av.container.InputContainer, audio: av.AudioStream) -> float | None:
    """The stream's duration in seconds, else the container's, else None."""
    if audio.duration is not None and audio.time_base is not None:
        return float(audio.duration * audio.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _os_reason(error: OSError) -> str:
    if isinstance(error, NotRegularFile):
        return str(error).rsplit(" is ", 1)[-1].replace("not a regular file", "not a regular file: not read")
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    return f"cannot read: {error.strerror or error}"


def _open_reason(error: Exception) -> str:
    if isinstance(error, av.error.InvalidDataError):
        return "not an audio file, or damaged (FFmpeg found no format it can read)"
    if isinstance(error, EOFError):
        return "file ends before its audio starts (truncated?)"
    if isinstance(error, OSError) and not isinstance(error, av.FFmpegError):
        return _os_reason(error)
    return f"cannot open: {_ffmpeg_reason(error)}"


def _ffmpeg_reason(error: Exception) -> str:
    """FFmpeg's words for an error, without the errno and file name PyAV adds."""
    return str(getattr(error, "strerror", None) or error)
