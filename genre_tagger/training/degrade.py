"""Degraded copies of decoded audio, the way many files in a user's library sound.

Old files often come from 16 kHz sources (nothing above 8 kHz) and most libraries are
lossy: these functions make such copies of clean training audio, for two uses:

- *robustness*: score the models with the test folds degraded (``retrain`` reports it);
- *augmentation*: add degraded copies of the training clips, inside the training folds
  only.

They work on decoded samples in memory and never touch a file.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
import soxr

from genre_tagger.pipeline.encode import decode_memory, encode
from genre_tagger.segments import SAMPLE_RATE

BAND_LIMIT_RATE = 16000  # Hz: the rate many old files were made at
LOSSY_BITRATE = 32000  # bit/s for mono 22050 Hz: as coarse as a 64 kbit/s stereo 44.1 kHz mp3


def band_limit(y: np.ndarray, via_rate: int = BAND_LIMIT_RATE) -> np.ndarray:
    """``y`` (float32 ``[n_samples]`` at 22050 Hz) resampled through ``via_rate`` Hz and
    back: everything above ``via_rate / 2`` is gone, the length is kept."""
    down = soxr.resample(y, SAMPLE_RATE, via_rate, quality="HQ")
    up = soxr.resample(down, via_rate, SAMPLE_RATE, quality="HQ")
    return _same_length(up, len(y))


def lossy_mp3(y: np.ndarray, bit_rate: int = LOSSY_BITRATE) -> np.ndarray:
    """``y`` (float32 ``[n_samples]`` at 22050 Hz) encoded as a mono mp3 at ``bit_rate``
    bit/s and decoded again (LAME, bundled with PyAV), the length kept."""
    buffer = io.BytesIO()
    encode(buffer, [y], SAMPLE_RATE, "mp3", bit_rate)
    return _same_length(decode_memory(buffer.getvalue()), len(y))


LOUD_RMS_DB = -11.0  # dBFS: the level of a loud modern master before its peaks are clipped
SHELF_DB = 3.0  # dB added below :data:`SHELF_LOW_HZ` and above :data:`SHELF_HIGH_HZ`
SHELF_LOW_HZ, SHELF_HIGH_HZ = 120.0, 5000.0
MASTER_RATE, MASTER_BITRATE = 44100, 160000  # a 44.1 kHz mp3 as stores sell them


def loud_master(y: np.ndarray) -> np.ndarray:
    """``y`` (float32 ``[n_samples]`` at 22050 Hz) as today's records sound, unlike
    GTZAN's older, quieter sources: lows and highs lifted :data:`SHELF_DB` dB (the
    "smile" of modern mastering), brought to :data:`LOUD_RMS_DB` dBFS and driven into a
    soft limiter (its peaks rounded off, the whole about 3 dB louder still: about -8 dBFS,
    as loud as records are made today), then a 44.1 kHz mp3 at 160 kbit/s, decoded and
    brought back to 22050 Hz; the length is kept."""
    from scipy.signal import butter, sosfilt

    lift = 10 ** (SHELF_DB / 20) - 1
    low = sosfilt(butter(2, SHELF_LOW_HZ, "lowpass", fs=SAMPLE_RATE, output="sos"), y)
    high = sosfilt(butter(2, SHELF_HIGH_HZ, "highpass", fs=SAMPLE_RATE, output="sos"), y)
    shaped = y + lift * (low + high)
    rms = float(np.sqrt(np.mean(shaped ** 2)))
    if rms > 0:
        shaped = shaped * (10 ** (LOUD_RMS_DB / 20) / rms)
    limited = np.tanh(1.5 * shaped) / np.tanh(1.5)  # soft-clips peaks; the body passes nearly as it was
    buffer = io.BytesIO()
    encode(buffer, [soxr.resample(limited.astype(np.float32), SAMPLE_RATE, MASTER_RATE, quality="HQ")],
           MASTER_RATE, "mp3", MASTER_BITRATE)
    return _same_length(soxr.resample(decode_memory(buffer.getvalue()), MASTER_RATE, SAMPLE_RATE, quality="HQ"), len(y))


def _same_length(y: np.ndarray, n_samples: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)[:n_samples]
    return np.pad(y, (0, n_samples - len(y)))


#: name -> what a copy is, in the model card's words
DESCRIPTIONS: dict[str, str] = {
    "band-limited-16k": "resampled through 16 kHz",
    "mp3-32k": "re-encoded as 32 kbit/s mono mp3",
    "loud-master": "mastered loud (lows and highs lifted, soft-limited to about -8 dBFS) as a 160 kbit/s 44.1 kHz mp3",
}

#: name -> function, as named in caches, metrics and ``retrain``'s options
DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "band-limited-16k": band_limit,
    "mp3-32k": lossy_mp3,
    "loud-master": loud_master,
}
