"""Labelled feature rows: every segment of every clip, by each feature extractor.

:func:`build_dataset` analyses clips (from the cache where it can) into a
:class:`Dataset`; degraded copies of the clips (:mod:`genre_tagger.training.degrade`)
make datasets of their own whose rows share their clips' ids, so a copy always sits on
its clip's side of every split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from genre_tagger.hookspecs import FeatureExtractor
from genre_tagger.pipeline import cache as cache_module
from genre_tagger.pipeline.analysis import Analysed, selection_name
from genre_tagger.pipeline.dispatch import analyse_many
from genre_tagger.training.clips import Clip
from genre_tagger.training.degrade import DEGRADATIONS


@dataclass
class Dataset:
    """Feature rows of labelled clips: per extractor its columns ``[n_segments,
    n_features]`` in ``features``, and per row its genre ``y``, clip id ``groups`` and
    position ``segment`` in the clip; ``albums`` (a user's tracks) the album of each row,
    which cross-validation keeps whole (``None``: each clip is its own).

    ``X`` puts the extractors' columns side by side in the order of ``features``, the
    order a model names them in its ``feature_extractors``.
    """

    features: dict[str, np.ndarray]
    versions: dict[str, str]  # extractor name -> version
    y: np.ndarray
    groups: np.ndarray
    segment: np.ndarray
    failures: list[str] = field(default_factory=list)
    n_duplicates_dropped: int = 0
    albums: np.ndarray | None = None

    @property
    def fold_groups(self) -> np.ndarray:
        """What cross-validation keeps on one side: the albums, else the clips."""
        return self.groups if self.albums is None else self.albums

    @property
    def X(self) -> np.ndarray:
        return np.hstack(list(self.features.values()))

    @property
    def clips(self) -> np.ndarray:
        return np.unique(self.groups)

    def subset(self, mask: np.ndarray) -> "Dataset":
        return Dataset(
            {name: rows[mask] for name, rows in self.features.items()}, self.versions,
            self.y[mask], self.groups[mask], self.segment[mask],
            albums=None if self.albums is None else self.albums[mask],
        )

    def select(self, extractor_names: tuple[str, ...]) -> "Dataset":
        """The columns of ``extractor_names`` only, in that order."""
        return Dataset(
            {name: self.features[name] for name in extractor_names}, {name: self.versions[name] for name in extractor_names},
            self.y, self.groups, self.segment, self.failures, self.n_duplicates_dropped, self.albums,
        )

    def keys(self) -> np.ndarray:
        """``"<clip id>#<segment>"`` per row: the same segment in other datasets."""
        return np.char.add(np.char.add(self.groups.astype(str), "#"), self.segment.astype(str))

    def summary(self) -> dict:
        """Counts of clips and segments per genre, for metrics files and model cards."""
        clip_genre = {g: y for g, y in zip(self.groups, self.y)}
        genres, clip_counts = np.unique(list(clip_genre.values()), return_counts=True)
        _, segment_counts = np.unique(self.y, return_counts=True)
        return {
            "n_clips": int(len(clip_genre)),
            "n_segments": int(len(self.y)),
            "clips_per_genre": {str(g): int(c) for g, c in zip(genres, clip_counts)},
            "segments_per_genre": {str(g): int(c) for g, c in zip(genres, segment_counts)},
            "duplicate_rows_dropped": self.n_duplicates_dropped,
            "failed_clips": len(self.failures),
        }


def build_dataset(
    clips: list[Clip],
    extractors: list[FeatureExtractor],
    cache: cache_module.Cache,
    jobs: int = 1,
    on_progress: Callable[[Clip, Analysed | None], None] | None = None,
    degradation: str | None = None,
    max_segments: int | None = None,
) -> Dataset:
    """Features of every segment of every clip by each of ``extractors`` (at most
    ``max_segments`` spread over it, as ``scan`` chooses them), from the cache where
    possible; a clip is decoded once for all the extractors whose features the cache lacks
    (an extractor added later leaves the others' features cached).

    With ``degradation`` (a name of :data:`~genre_tagger.training.degrade.DEGRADATIONS`),
    the features are those of a degraded copy of each clip. Clips that fail to decode are
    listed in ``failures`` and left out. ``on_progress(clip, result)`` is called once per
    clip (result ``None`` when cached).
    """
    selection = selection_name(max_segments, degradation)
    keys = {e.name: cache_module.features_key(e.name, e.version) for e in extractors}
    features: dict[Path, dict[str, np.ndarray]] = {}
    todo: dict[tuple[str, ...], list[Path]] = {}  # the extractors a clip lacks -> those clips
    by_path = {clip.path: clip for clip in clips}
    for clip in clips:
        file_key = cache_module.file_key(clip.path)
        cached = {name: cache.get_features(file_key, key, selection) for name, key in keys.items()}
        features[clip.path] = {name: rows for name, rows in cached.items() if rows is not None}
        missing = tuple(name for name, rows in cached.items() if rows is None)
        if missing:  # only what the cache lacks is computed: a new extractor leaves the others cached
            todo.setdefault(missing, []).append(clip.path)
        elif on_progress:
            on_progress(clip, None)
    failures = []
    transform = DEGRADATIONS[degradation] if degradation else None
    for names, paths in todo.items():
        for result in analyse_many(paths, list(names), max_segments, jobs, transform=transform):
            if result.error:
                failures.append(result.error)
                del features[result.path]
            else:
                features[result.path].update(result.features.features)
                file_key = cache_module.file_key(result.path)
                for name in names:
                    cache.put_features(file_key, keys[name], selection, features[result.path][name])
            if on_progress:
                on_progress(by_path[result.path], result)
    ordered = [clip for clip in clips if clip.path in features]
    if not ordered:
        raise ValueError("no clip could be analysed")
    counts = [len(features[c.path][extractors[0].name]) for c in ordered]
    return Dataset(
        {e.name: np.vstack([features[c.path][e.name] for c in ordered]) for e in extractors},
        {e.name: e.version for e in extractors},
        y=np.repeat([c.genre for c in ordered], counts),
        groups=np.repeat([c.clip_id for c in ordered], counts),
        segment=np.concatenate([np.arange(n) for n in counts]),
        failures=failures,
        albums=np.repeat([c.album or c.clip_id for c in ordered], counts) if any(c.album for c in ordered) else None,
    )


def drop_duplicate_rows(dataset: Dataset) -> Dataset:
    """Remove exact duplicate feature rows (keeping the first), as the original study did.

    GTZAN repeats some excerpts; identical rows would otherwise be able to sit in train
    and test at once.
    """
    _, first = np.unique(dataset.X, axis=0, return_index=True)
    keep = np.zeros(len(dataset.y), dtype=bool)
    keep[first] = True
    deduplicated = dataset.subset(keep)
    deduplicated.failures = dataset.failures
    deduplicated.n_duplicates_dropped = int((~keep).sum())
    return deduplicated


def stack(datasets: list[Dataset]) -> Dataset:
    """The rows of ``datasets`` (with the same columns) one after the other."""
    first = datasets[0]
    return Dataset(
        {name: np.vstack([d.features[name] for d in datasets]) for name in first.features}, first.versions,
        np.concatenate([d.y for d in datasets]), np.concatenate([d.groups for d in datasets]),
        np.concatenate([d.segment for d in datasets]),
        albums=None if any(d.albums is None for d in datasets) else np.concatenate([d.albums for d in datasets]),
    )
