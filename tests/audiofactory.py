"""Small audio files made on the fly for tests: tones, noise and clicks in every format.

Encoding goes through :mod:`genre_tagger.pipeline.encode` (PyAV, FFmpeg with its codecs
bundled in the wheel; Ogg Vorbis through libsndfile), so tests need no system program.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genre_tagger.pipeline.encode import encode

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


def brown_noise(seconds: float, sr: int = 22050, amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    """Brown (random-walk) noise, its power falling 6 dB per octave, float32 ``[n_samples]``."""
    walk = np.cumsum(np.random.default_rng(seed).standard_normal(int(seconds * sr)))
    walk -= np.convolve(walk, np.ones(2048) / 2048, mode="same")  # no drift: keep it audible, not DC
    return (amplitude * walk / np.abs(walk).max()).astype(np.float32)


def hum(seconds: float, sr: int = 22050, mains: float = 50.0, amplitude: float = 0.3) -> np.ndarray:
    """Mains hum: ``mains`` Hz and its first odd harmonics, float32 ``[n_samples]``."""
    y = sum(tone(seconds, sr, mains * k, amplitude / k) for k in (1, 3, 5, 7))
    return (y / np.abs(y).max() * amplitude).astype(np.float32)


def sweep(seconds: float, sr: int = 22050, low: float = 20.0, high: float = 10000.0, amplitude: float = 0.3) -> np.ndarray:
    """An exponential sine sweep from ``low`` to ``high`` Hz, float32 ``[n_samples]``."""
    t = np.arange(int(seconds * sr)) / sr
    rate = np.log(high / low) / seconds
    return (amplitude * np.sin(2 * np.pi * low * (np.exp(rate * t) - 1) / rate)).astype(np.float32)


def random_clicks(seconds: float, sr: int = 22050, per_second: float = 6.0, seed: int = 0) -> np.ndarray:
    """Clicks at random times and loudness (no beat), float32 ``[n_samples]``."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    click = np.exp(-np.arange(200) / 20.0).astype(np.float32)
    for start in rng.integers(0, len(y) - 200, int(per_second * seconds)):
        y[start : start + 200] += rng.uniform(0.2, 0.9) * click
    return y.clip(-1, 1)


def speech(path: str | Path, text: str, voice: str = "en") -> Path:
    """Speech by Debian's ``espeak-ng`` (a WAV file at ``path``); ``FileNotFoundError`` without it."""
    import subprocess

    path = Path(path)
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


def music_like(seconds: float, sr: int = 22050, seed: int = 0) -> np.ndarray:
    """Chords, a beat and a little noise: enough structure for every feature to be finite."""
    rng = np.random.default_rng(seed)
    y = tone(seconds, sr, 220.0, 0.2) + tone(seconds, sr, 277.2, 0.15) + tone(seconds, sr, 329.6, 0.1)
    y += clicks(seconds, sr, bpm=100 + 40 * rng.random(), amplitude=0.4)
    y += noise(seconds, sr, 0.02, seed)
    return np.clip(y, -1, 1).astype(np.float32)


def write(path: str | Path, y: np.ndarray, sr: int = 22050, bitrate: int | None = None) -> Path:
    """Encode ``y`` (``[n_samples]`` mono or ``[n_channels, n_samples]``) to ``path``, in
    the format of its extension (see :func:`genre_tagger.pipeline.encode.encode`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encode(path, [y], sr, path.suffix.lower().lstrip("."), bitrate)
    return path


EXTENSIONS = ("mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff", "au")
