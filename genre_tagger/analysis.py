"""One file in, feature rows per segment out: decode once, cut, transform once, extract
with each extractor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from genre_tagger import audio, degrade, segments, spectrum
from genre_tagger.hookspecs import FeatureExtractor

# Segments decoded and extracted together: one block is one spectrum batch, 48 s of audio
# (4 MB float32, ~35 MB of spectra), which bounds memory whatever the length of the file.
BLOCK_SEGMENTS = spectrum.BATCH_SAMPLES // segments.SEGMENT_SAMPLES

# A segment whose samples all stay below -60 dBFS is silence (digital silence, or the
# dither/hiss of a silent recording): nothing a genre model can judge.
SILENCE_PEAK = 10 ** (-60 / 20)
SILENT_NOTE = "silent (every analysed segment peaks below -60 dBFS): no genre to tell, not tagged"


@dataclass
class FileFeatures:
    """Features of the analysed segments of one file.

    ``features`` maps each extractor's name to its rows ``[n_analysed, n_features]``
    (the same segments for every extractor); ``segment_index`` the position of each
    analysed segment in the track; ``n_segments`` how many whole segments the track has;
    ``duration_s`` the decoded duration in seconds; ``peak`` the largest absolute
    sample of each analysed segment (``None`` where unknown).
    """

    features: dict[str, np.ndarray]
    segment_index: np.ndarray
    n_segments: int
    duration_s: float
    peak: np.ndarray | None = None

    @property
    def silent(self) -> bool:
        """Whether every analysed segment is silent (peaks below :data:`SILENCE_PEAK`)."""
        return self.peak is not None and len(self.peak) > 0 and bool((self.peak < SILENCE_PEAK).all())


def selection_name(max_segments: int | None, degradation: str | None = None) -> str:
    """How segments were chosen, as recorded in caches: ``all`` or ``spread<N>``, with
    ``+<degradation>`` for a degraded copy (see :mod:`genre_tagger.degrade`)."""
    selection = f"spread{max_segments}" if max_segments else "all"
    return f"{selection}+{degradation}" if degradation else selection


def file_features(
    path: str | Path, extractors: Sequence[FeatureExtractor], max_segments: int | None = None,
    degradation: str | None = None,
) -> FileFeatures:
    """Decode ``path`` once, in blocks, and extract the features of its segments with
    each of ``extractors``.

    With ``max_segments``, only that many segments spread evenly over the track are
    analysed (see :func:`genre_tagger.segments.spread`); the spread is planned from the
    container's duration and the rest of the audio is decoded but not analysed.
    With ``degradation`` (a name of :data:`genre_tagger.degrade.DEGRADATIONS`), the
    features are those of a degraded copy of each decoded block.

    Raises :class:`genre_tagger.audio.AudioError` for undecodable files and
    :class:`genre_tagger.segments.TooShortError` for tracks under one segment.
    """
    wanted: np.ndarray | None = None
    if max_segments:
        info = audio.probe(path)
        if info.duration_s:
            expected = segments.count(int(info.duration_s * segments.SAMPLE_RATE))
            wanted = segments.spread(expected, max_segments)
    rows: dict[str, list[np.ndarray]] = {extractor.name: [] for extractor in extractors}
    indices, peaks = [], []
    n_segments, n_samples = 0, 0
    for block in audio.stream(path, segments.SEGMENT_SAMPLES * BLOCK_SEGMENTS):
        n_samples += len(block)
        n_whole = segments.count(len(block))
        if n_whole == 0:
            continue
        index = np.arange(n_segments, n_segments + n_whole)
        keep = np.ones(n_whole, bool) if wanted is None else np.isin(index, wanted)
        if keep.any():
            if degradation:
                block = degrade.DEGRADATIONS[degradation](block)
            batch = spectrum.Segments(segments.split(block)[keep])  # its STFT is computed once, for all extractors
            for extractor in extractors:
                rows[extractor.name].append(np.asarray(extractor.extract(batch), dtype=np.float64))
            indices.append(index[keep])
            peaks.append(np.abs(batch.samples).max(axis=1))
        n_segments += n_whole
    if n_segments == 0:
        # Decoded fine but too short: let segments.split word the error.
        segments.split(np.zeros(n_samples, np.float32))
    if not indices:  # the duration in the header was wrong: fall back to every segment
        return file_features(path, extractors, None, degradation)
    return FileFeatures(
        {name: np.vstack(blocks) for name, blocks in rows.items()},
        np.concatenate(indices),
        n_segments,
        n_samples / segments.SAMPLE_RATE,
        np.concatenate(peaks),
    )
