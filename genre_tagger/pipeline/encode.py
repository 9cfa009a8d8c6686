"""Encoding audio, the reverse of :mod:`~genre_tagger.pipeline.audio`: float samples to
the formats a library holds, through PyAV (FFmpeg's encoders, bundled in its wheel).

It never writes a user's file: ``retrain`` makes lossy copies of training audio in memory
(:mod:`genre_tagger.training.degrade`), and the test suite and the benchmarks make their
own small libraries with it.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, Iterable

import av
import numpy as np

__all__ = ["FORMATS", "decode_memory", "encode"]

#: extension -> (container, codec, the encoder's sample format); Ogg Vorbis is written by
#: libsndfile (soundfile), as the PyAV wheel has no libvorbis
FORMATS: dict[str, tuple[str, str, str]] = {
    "mp3": ("mp3", "libmp3lame", "fltp"),
    "flac": ("flac", "flac", "s16"),
    "opus": ("ogg", "libopus", "flt"),
    "m4a": ("ipod", "aac", "fltp"),
    "wav": ("wav", "pcm_s16le", "s16"),
    "aiff": ("aiff", "pcm_s16be", "s16"),
    "au": ("au", "pcm_s16be", "s16"),
}
_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}
_FRAME = 4096  # samples per frame handed to the encoder


def encode(target: str | os.PathLike[str] | BinaryIO, chunks: Iterable[np.ndarray], rate: int, ext: str,
           bit_rate: int | None = None) -> int:
    """Encode float samples in [-1, 1] to ``target`` (a path or a binary file object) as
    ``ext`` (``"ogg"`` or one of :data:`FORMATS`); returns the samples written per channel.

    ``chunks`` are float32 ``[n]`` (mono) or ``[channels, n]``, streamed, at ``rate`` Hz;
    Opus is encoded at 48 kHz (FFmpeg resamples). ``bit_rate`` (bit/s) applies to the
    lossy codecs.
    """
    chunks = (np.atleast_2d(np.asarray(chunk, dtype=np.float32)) for chunk in chunks)
    first = next(chunks, None)
    if first is None:
        raise ValueError("nothing to encode")
    if ext == "ogg":
        return _encode_vorbis(target, first, chunks, rate)
    container_format, codec, sample_format = FORMATS[ext]
    layout = _LAYOUTS[first.shape[0]]
    out_rate = 48000 if codec == "libopus" else rate
    written = 0
    with av.open(target if not isinstance(target, os.PathLike) else os.fspath(target), "w",
                 format=container_format) as container:
        stream = container.add_stream(codec, rate=out_rate, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=out_rate)

        def mux(frame: av.AudioFrame | None) -> None:
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    container.mux(packet)

        for chunk in _chained(first, chunks):
            written += chunk.shape[1]
            for start in range(0, chunk.shape[1], _FRAME):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk[:, start : start + _FRAME]),
                                                   format="fltp", layout=layout)
                frame.sample_rate = rate
                mux(frame)
        mux(None)
        for packet in stream.encode(None):
            container.mux(packet)
    return written


def _chained(first: np.ndarray, rest: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield first
    yield from rest


def _encode_vorbis(target, first: np.ndarray, rest: Iterable[np.ndarray], rate: int) -> int:
    import soundfile  # librosa's own dependency: libsndfile, bundled in its wheel

    written = 0
    with soundfile.SoundFile(target, "w", rate, first.shape[0], format="OGG", subtype="VORBIS") as out:
        for chunk in _chained(first, rest):
            out.write(chunk.T)
            written += chunk.shape[1]
    return written


def decode_memory(data: bytes) -> np.ndarray:
    """The first audio stream of encoded ``data`` as float32 mono ``[n_samples]`` at its
    own rate (channels averaged): a round trip through a lossy codec, in memory."""
    mono = []
    with av.open(io.BytesIO(data), "r") as container:
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()  # planar: [channels, n]; packed: [1, n * channels]
            if not frame.format.is_planar:
                samples = samples.reshape(-1, frame.layout.nb_channels).T
            mono.append(samples[0] if len(samples) == 1 else samples.mean(axis=0))
    return np.concatenate(mono).astype(np.float32)
