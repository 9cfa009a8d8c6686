"""One file in, one feature row per segment out: decode, cut, extract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre_tagger import audio, segments
from genre_tagger.hookspecs import FeatureExtractor

# Segments decoded and extracted together: one block is 96 s of audio (8.5 MB float32),
# which bounds memory whatever the length of the file.
BLOCK_SEGMENTS = 32


@dataclass
class FileFeatures:
    """Features of the analysed segments of one file.

    ``features`` is ``[n_analysed, n_features]``; ``segment_index`` the position of each
    analysed segment in the track; ``n_segments`` how many whole segments the track has;
    ``duration_s`` the decoded duration in seconds.
    """

    features: np.ndarray
    segment_index: np.ndarray
    n_segments: int
    duration_s: float


def selection_name(max_segments: int | None) -> str:
    """How segments were chosen, as recorded in caches: ``all`` or ``spread<N>``."""
    return f"spread{max_segments}" if max_segments else "all"


def file_features(path: str | Path, extractor: FeatureExtractor, max_segments: int | None = None) -> FileFeatures:
    """Decode ``path`` in blocks and extract features of its segments.

    With ``max_segments``, only that many segments spread evenly over the track are
    analysed (see :func:`genre_tagger.segments.spread`); the spread is planned from the
    container's duration and the rest of the audio is decoded but not analysed.

    Raises :class:`genre_tagger.audio.AudioError` for undecodable files and
    :class:`genre_tagger.segments.TooShortError` for tracks under one segment.
    """
    wanted: np.ndarray | None = None
    if max_segments:
        info = audio.probe(path)
        if info.duration_s:
            expected = segments.count(int(info.duration_s * segments.SAMPLE_RATE))
            wanted = segments.spread(expected, max_segments)
    rows, indices = [], []
    n_segments, n_samples = 0, 0
    for block in audio.stream(path, segments.SEGMENT_SAMPLES * BLOCK_SEGMENTS):
        n_samples += len(block)
        n_whole = segments.count(len(block))
        if n_whole == 0:
            continue
        index = np.arange(n_segments, n_segments + n_whole)
        keep = np.ones(n_whole, bool) if wanted is None else np.isin(index, wanted)
        if keep.any():
            block_segments = segments.split(block)[keep]
            rows.append(np.asarray(extractor.extract(block_segments), dtype=np.float64))
            indices.append(index[keep])
        n_segments += n_whole
    if n_segments == 0:
        # Decoded fine but too short: let segments.split word the error.
        segments.split(np.zeros(n_samples, np.float32))
    if not rows:  # the duration in the header was wrong: fall back to every segment
        return file_features_all(path, extractor)
    return FileFeatures(np.vstack(rows), np.concatenate(indices), n_segments, n_samples / segments.SAMPLE_RATE)


def file_features_all(path: str | Path, extractor: FeatureExtractor) -> FileFeatures:
    """Features of every segment of ``path``."""
    return file_features(path, extractor, max_segments=None)
