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


def _same_length(y: np.ndarray, n_samples: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)[:n_samples]
    return np.pad(y, (0, n_samples - len(y)))


#: name -> function, as named in caches, metrics and ``retrain``'s options
DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "band-limited-16k": band_limit,
    "mp3-32k": lossy_mp3,
}
