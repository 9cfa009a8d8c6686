"""Where the analysis of many files runs: here and on worker processes
(:mod:`~genre_tagger.pipeline.workers`), or on a Dask cluster
(:mod:`~genre_tagger.pipeline.cluster`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from genre_tagger.pipeline.analysis import Analysed, Transform
from genre_tagger.pipeline.cluster import analyse_on_cluster
from genre_tagger.pipeline.stopping import never
from genre_tagger.pipeline.workers import analyse_locally


def analyse_many(
    paths: Iterable[Path], extractor_names: Sequence[str], max_segments: int | None = None, jobs: int = 1,
    cluster: str | None = None, transform: Transform | None = None, stop: Callable[[], bool] = never,
) -> Iterator[Analysed]:
    """Analyse ``paths``, yielding one result per path as they complete (not in input order).

    With ``cluster`` (a Dask scheduler address, or ``"local"`` for a local Dask cluster of
    ``jobs`` processes) the files are analysed there
    (:func:`~genre_tagger.pipeline.cluster.analyse_on_cluster`), otherwise here on ``jobs``
    worker processes (:func:`~genre_tagger.pipeline.workers.analyse_locally`).
    ``transform`` analyses a transformed copy of the audio (training only; not on a
    cluster). Once ``stop()`` is true no new file is started; the ones in flight are still
    yielded.
    """
    if not cluster:
        yield from analyse_locally(paths, extractor_names, max_segments, jobs, transform, stop)
        return
    if transform is not None:
        raise ValueError("transformed copies are not analysed on a cluster")
    yield from analyse_on_cluster(paths, extractor_names, max_segments, cluster, jobs, stop)
