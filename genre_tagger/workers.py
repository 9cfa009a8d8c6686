"""Analysing many files on long-lived worker processes.

Each worker imports librosa/numba and loads the plugins once, then analyses file after
file; with ``jobs=1`` everything runs in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from genre_tagger import analysis, audio, segments
from genre_tagger.plugins import registry


@dataclass
class Analysed:
    """The outcome for one file: its features, or a one-line error."""

    path: Path
    features: analysis.FileFeatures | None = None
    error: str | None = None


def analyse(path: Path, extractor_name: str, max_segments: int | None) -> Analysed:
    """Features of one file; every failure becomes a one-line ``error`` naming the file."""
    try:
        extractor = registry().feature_extractor(extractor_name)
        return Analysed(path, analysis.file_features(path, extractor, max_segments))
    except audio.AudioError as error:
        return Analysed(path, error=str(error))
    except segments.TooShortError as error:
        return Analysed(path, error=f"{path}: {error}")
    except MemoryError:
        return Analysed(path, error=f"{path}: out of memory while analysing")
    except Exception as error:  # a bug or an odd file must not end the whole run
        message = str(error).splitlines()[0] if str(error) else ""
        return Analysed(path, error=f"{path}: unexpected {type(error).__name__}: {message}")


def _quiet_worker() -> None:
    # One BLAS/OpenMP thread per worker: N workers use N cores, not N x N threads.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[variable] = "1"
    registry()


def analyse_many(
    paths: Iterable[Path], extractor_name: str, max_segments: int | None = None, jobs: int = 1
) -> Iterator[Analysed]:
    """Analyse ``paths``, yielding results as they complete (not in input order).

    ``jobs`` worker processes are started once and reused for every file; at most
    ``2 * jobs`` files are in flight, so memory stays bounded for any number of files.
    """
    if jobs <= 1:
        for path in paths:
            yield analyse(path, extractor_name, max_segments)
        return
    context = multiprocessing.get_context("spawn")  # no fork: safe with OpenMP threads
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_quiet_worker) as pool:
        pending = set()
        for path in paths:
            pending.add(pool.submit(analyse, path, extractor_name, max_segments))
            if len(pending) >= 2 * jobs:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        for future in pending:
            yield future.result()
