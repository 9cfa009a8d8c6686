"""Cutting a track into the fixed-length segments every model is trained on.

The convention is GTZAN/Kaggle's ``features_3_sec.csv``: consecutive, non-overlapping
windows of 66149 samples (3 s at 22050 Hz) from the start of the track; a trailing
partial window is dropped.
"""

from __future__ import annotations

import numpy as np

from genre_tagger.defaults import DEFAULT_MAX_SEGMENTS  # noqa: F401 (re-exported: scan's default)

__all__ = ["DEFAULT_MAX_SEGMENTS", "SAMPLE_RATE", "SEGMENT_SAMPLES", "TooShortError", "count", "split", "spread"]

#: Hz: every extractor hears decoded audio at this rate (what ``librosa.load`` returns)
SAMPLE_RATE = 22050
SEGMENT_SAMPLES = 66149


class TooShortError(ValueError):
    """The track is shorter than one segment."""


def count(n_samples: int, segment_samples: int = SEGMENT_SAMPLES) -> int:
    """Number of whole segments in a track of ``n_samples`` samples."""
    return n_samples // segment_samples


def split(y: np.ndarray, segment_samples: int = SEGMENT_SAMPLES) -> np.ndarray:
    """Cut mono audio ``y`` (shape ``[n_samples]``) into ``[n_segments, segment_samples]``.

    Returns a read-only view (no copy). Raises :class:`TooShortError` when ``y`` holds
    less than one segment.
    """
    if y.ndim != 1:
        raise ValueError(f"expected mono audio of shape [n_samples], got shape {y.shape}")
    n = count(len(y), segment_samples)
    if n == 0:
        seconds, needed = f"{len(y) / SAMPLE_RATE:.2f}", f"{segment_samples / SAMPLE_RATE:.2f}"
        if seconds == needed:  # a few samples short: the seconds alone would read as long enough
            seconds, needed = f"{seconds} s ({len(y)} samples)", f"{needed} s ({segment_samples} samples)"
        else:
            seconds, needed = f"{seconds} s", f"{needed} s"
        raise TooShortError(f"track is {seconds} long, shorter than one {needed} segment")
    view = y[: n * segment_samples].reshape(n, segment_samples)
    view.flags.writeable = False
    return view



def spread(n_segments: int, max_segments: int | None) -> np.ndarray:
    """Indices of at most ``max_segments`` segments spread evenly over ``n_segments``.

    Evenly spaced segments sample intro, body and outro alike, so a long track is
    summarised without analysing all of it. ``None`` or ``0`` keeps every segment.
    """
    if not max_segments or n_segments <= max_segments:
        return np.arange(n_segments)
    # centres of max_segments equal strata
    return np.floor((np.arange(max_segments) + 0.5) * n_segments / max_segments).astype(int)
