"""One file in, feature rows per segment out: decode once, cut, transform once, extract
with each extractor.

:func:`file_features` does the work; :func:`analyse` runs it for one file wherever the
analysis runs (this process, a worker process, a Dask worker) and turns every failure into
a one-line error naming the file (:class:`Analysed`).
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from genre_tagger import segments, spectrum
from genre_tagger.hookspecs import FeatureExtractor
from genre_tagger.pipeline import audio
from genre_tagger.plugins import registry

#: turns a decoded block (float32 ``[n_samples]`` at 22050 Hz) into another of the same
#: length: a degraded copy for training (see :mod:`genre_tagger.training.degrade`)
Transform = Callable[[np.ndarray], np.ndarray]

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
    ``+<degradation>`` for a degraded copy (see :mod:`genre_tagger.training.degrade`)."""
    selection = f"spread{max_segments}" if max_segments else "all"
    return f"{selection}+{degradation}" if degradation else selection


def file_features(
    path: str | Path, extractors: Sequence[FeatureExtractor], max_segments: int | None = None,
    transform: Transform | None = None,
) -> FileFeatures:
    """Decode ``path`` once, in blocks, and extract the features of its segments with
    each of ``extractors``.

    With ``max_segments``, only that many segments spread evenly over the track are
    analysed (see :func:`genre_tagger.segments.spread`); the spread is planned from the
    container's duration and the rest of the audio is not analysed, and (where it can be)
    not even decoded (see :func:`genre_tagger.pipeline.audio.stream`'s ``only``).
    With ``transform``, the features are those of ``transform`` of each decoded block.

    Raises :class:`genre_tagger.pipeline.audio.AudioError` for undecodable files and
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
    # A transform (a degraded copy) sees whole blocks as they are: zeros away from the
    # spans would change a loudness-driven one's gain.
    spans = None if wanted is None or transform is not None else [(int(i) * segments.SEGMENT_SAMPLES, (int(i) + 1) * segments.SEGMENT_SAMPLES)
                                         for i in wanted]
    for block in audio.stream(path, segments.SEGMENT_SAMPLES * BLOCK_SEGMENTS, spans):
        n_samples += len(block)
        n_whole = segments.count(len(block))
        if n_whole == 0:
            continue
        index = np.arange(n_segments, n_segments + n_whole)
        keep = np.ones(n_whole, bool) if wanted is None else np.isin(index, wanted)
        if keep.any():
            if transform is not None:
                block = transform(block)
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
        return file_features(path, extractors, None, transform)
    return FileFeatures(
        {name: np.vstack(blocks) for name, blocks in rows.items()},
        np.concatenate(indices),
        n_segments,
        n_samples / segments.SAMPLE_RATE,
        np.concatenate(peaks),
    )


@dataclass
class Analysed:
    """The outcome for one file: its features, or a one-line error."""

    path: Path
    features: FileFeatures | None = None
    error: str | None = None


#: how much more memory than before it the analysis of one file may take: ten times what
#: the largest block of any file needs, far less than a hostile file could make it take
MEMORY_HEADROOM = 2 << 30


@contextmanager
def memory_capped(headroom: int = MEMORY_HEADROOM) -> Iterator[None]:
    """Cap this process's address space at what it holds now plus ``headroom`` bytes
    while inside (where the platform can: Linux), so that a file that would take more
    fails alone with a ``MemoryError`` instead of taking the machine down."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as statm:
            held = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, AttributeError):
        yield
        return
    cap = held + headroom
    for limit in (soft, hard):
        if limit != resource.RLIM_INFINITY:
            cap = min(cap, limit)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS (found once: about 1 ms), or ``None``."""
    try:
        from threadpoolctl import ThreadpoolController  # installed with scikit-learn
    except ImportError:
        return None
    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS runs on one thread. An analysis is many small matrix
    products (mel banks, chroma, musicnn's input), which BLAS threads only slow down:
    spinning against other work on the same cores, they made a 3-second segment's mel
    spectrogram take 15-30 ms instead of 0.4 ms (measured on a busy 2-core machine).
    Worker processes run on one thread anyway (see ``pipeline.workers``); this makes an
    analysis in the scan's own process (``--jobs 1``) do the same."""
    controller = _blas_controller()
    return nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


def analyse(path: Path, extractor_names: tuple[str, ...], max_segments: int | None,
            transform: Transform | None = None) -> Analysed:
    """Features of one file by each named extractor (see :func:`file_features`), its memory
    capped (:func:`memory_capped`) and BLAS on one thread (:func:`one_blas_thread`); every
    failure becomes a one-line ``error`` naming the file."""
    try:
        extractors = [registry().feature_extractor(name) for name in extractor_names]
        with memory_capped(), one_blas_thread():
            return Analysed(path, file_features(path, extractors, max_segments, transform))
    except audio.AudioError as error:
        return Analysed(path, error=str(error))
    except segments.TooShortError as error:
        return Analysed(path, error=f"{path}: {error}")
    except MemoryError:
        return Analysed(path, error=f"{path}: analysing it would take more than {MEMORY_HEADROOM >> 30} GB of memory: "
                                    "refused (a damaged or hostile file)")
    except Exception as error:  # a bug or an odd file must not end the whole run
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        return Analysed(path, error=f"{path}: could not be analysed, an error of genre-tagger or of a plugin "
                                    f"({type(error).__name__}: {message}); please report it")
