"""Small audio files made on the fly for tests: tones, noise and clicks in every format.

Encoding goes through PyAV (FFmpeg with its codecs bundled in the wheel), and Ogg Vorbis
through soundfile (libsndfile bundled in the wheel; the PyAV wheel has no libvorbis and
FFmpeg's own vorbis encoder is experimental and stereo-only), so tests need no system
program.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile

# extension -> (container format, codec, sample format of the encoder)
FORMATS: dict[str, tuple[str, str, str]] = {  # ogg is written by soundfile, see write()
    "mp3": ("mp3", "libmp3lame", "fltp"),
    "flac": ("flac", "flac", "s16"),
    "opus": ("ogg", "libopus", "flt"),
    "m4a": ("ipod", "aac", "fltp"),
    "wav": ("wav", "pcm_s16le", "s16"),
    "aiff": ("aiff", "pcm_s16be", "s16"),
    "au": ("au", "pcm_s16be", "s16"),
}


def tone(seconds: float, sr: int = 22050, freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    """A sine tone, float32 ``[n_samples]``."""
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, sr: int = 22050, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    """White noise, float32 ``[n_samples]``."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(int(seconds * sr))).clip(-1, 1).astype(np.float32)


def clicks(seconds: float, sr: int = 22050, bpm: float = 120.0, amplitude: float = 0.8) -> np.ndarray:
    """A click track: short decaying bursts every beat, float32 ``[n_samples]``."""
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    click = amplitude * np.exp(-np.arange(200) / 30.0).astype(np.float32)
    for start in np.arange(0, len(y) - 200, int(sr * 60 / bpm)):
        y[start : start + 200] += click
    return y


def music_like(seconds: float, sr: int = 22050, seed: int = 0) -> np.ndarray:
    """Chords, a beat and a little noise: enough structure for every feature to be finite."""
    rng = np.random.default_rng(seed)
    y = tone(seconds, sr, 220.0, 0.2) + tone(seconds, sr, 277.2, 0.15) + tone(seconds, sr, 329.6, 0.1)
    y += clicks(seconds, sr, bpm=100 + 40 * rng.random(), amplitude=0.4)
    y += noise(seconds, sr, 0.02, seed)
    return np.clip(y, -1, 1).astype(np.float32)


def write(path: str | Path, y: np.ndarray, sr: int = 22050, bitrate: int | None = None) -> Path:
    """Encode ``y`` (``[n_samples]`` mono or ``[n_channels, n_samples]``) to ``path``.

    The format is taken from the file extension (``ogg`` or one of :data:`FORMATS`).
    Opus only encodes at 48 kHz, so its input is resampled by FFmpeg.
    """
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if ext == "ogg":
        soundfile.write(path, np.atleast_2d(y).T, sr, format="OGG", subtype="VORBIS")
        return path
    container_format, codec, sample_format = FORMATS[ext]
    y = np.atleast_2d(np.asarray(y, dtype=np.float32))
    channels = y.shape[0]
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    rate = 48000 if codec == "libopus" else sr
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if bitrate:
            stream.bit_rate = bitrate
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate)
        block = 4096
        for start in range(0, y.shape[1], block):
            chunk = np.ascontiguousarray(y[:, start : start + block])
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1) if channels == 1 else chunk, format="fltp", layout=layout)
            frame.sample_rate = sr
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    container.mux(packet)
        for resampled in resampler.resample(None):
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


EXTENSIONS = ("mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff", "au")
