"""Analysing many files on long-lived worker processes.

Each worker imports librosa/numba and loads the plugins once, then analyses file after
file. With ``jobs=1`` too the analysis runs in one worker process, never in this one: a
decoder that crashes (a segfault in native code) then costs one file, not the scan. Workers leave SIGINT and SIGTERM
to this process and end with it (:mod:`genre_tagger.pipeline.stopping`); asked to stop,
the pool starts no new file and hands back the ones in flight; asked a second time
(:func:`~genre_tagger.pipeline.stopping.at_once`), it kills its workers and hands back
nothing more.
"""

from __future__ import annotations

import functools
import multiprocessing
import signal
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Generator, Iterable, Iterator, Sequence

from genre_tagger.pipeline.analysis import Analysed, Transform, analyse
from genre_tagger.pipeline.stopping import STOP_SIGNALS, at_once, exit_with_parent, ignore_stop_signals, never
from genre_tagger.plugins import registry

#: how often a wait for the workers looks whether a second stop signal came
_POLL_S = 0.1


class _Abandoned(Exception):
    """A second stop signal came while files were in flight: their analysis is dropped."""


def start_worker() -> None:
    """What every worker process does first (also a Dask worker's, see
    :mod:`genre_tagger.pipeline.cluster`)."""
    ignore_stop_signals()
    # One BLAS/OpenMP thread per worker: N workers use N cores, not N x N threads.
    # numpy is already imported here, so its thread pools are limited at run time.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    registry()


def _start_pool_worker() -> None:
    exit_with_parent()
    start_worker()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # held since its start (see _submit); ignored now


def _submit(pool: ProcessPoolExecutor, work: Callable[[Path], Analysed], path: Path) -> Future:
    """``pool.submit(work, path)``, with SIGINT and SIGTERM held back meanwhile: a worker
    process started by it inherits them held, so a Ctrl-C in the second it takes to start
    (importing, before :func:`_start_pool_worker` ignores them) does not print its
    traceback; this process gets the signal as soon as the submit is done."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return pool.submit(work, path)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def analyse_locally(
    paths: Iterable[Path], extractor_names: Sequence[str], max_segments: int | None = None, jobs: int = 1,
    transform: Transform | None = None, stop: Callable[[], bool] = never,
) -> Iterator[Analysed]:
    """Analyse ``paths`` on ``jobs`` worker processes (one for ``jobs=1``), yielding results
    as they complete (not in input order). Once ``stop()`` is true no file is started; the
    ones in flight are still yielded.

    The worker processes are started once and reused for every file; at most
    ``2 * jobs`` files are in flight, so memory stays bounded for any number of files.

    A worker process that dies (a crash in a decoder, the kernel's out-of-memory
    killer) does not end the run: the pool is restarted, the files that were in flight
    are analysed again one at a time, and a file that kills its worker again gets an
    ``error`` saying so. Only when the workers die on file after file (they cannot start,
    say) is :class:`~concurrent.futures.process.BrokenProcessPool` raised.
    """
    extractor_names = tuple(extractor_names)
    work = functools.partial(analyse, extractor_names=extractor_names, max_segments=max_segments, transform=transform)
    jobs = max(jobs, 1)
    queue = iter(paths)
    suspects: list[Path] = []  # in flight when a worker died: retried alone
    crashes_in_a_row = 0
    finished = False
    while not finished:
        with _pool(jobs) as pool:
            try:
                for index, path in enumerate(suspects):
                    if stop():
                        return
                    try:
                        result = _result(_submit(pool, work, path))
                    except BrokenProcessPool:
                        crashes_in_a_row += 1
                        if crashes_in_a_row > 2 * jobs + 2:
                            raise
                        yield Analysed(path, error=f"{path}: the analysis process crashed on this file")
                        suspects = suspects[index + 1 :]  # the rest on a fresh pool
                        break
                    crashes_in_a_row = 0
                    yield result
                else:
                    suspects, finished = yield from _analyse_queue(pool, queue, work, 2 * jobs, stop)
            except _Abandoned:
                _kill_workers(pool)
                return


def _result(future: Future) -> Analysed:
    """``future.result()``, unless a second stop signal comes first (:class:`_Abandoned`)."""
    _wait({future: None}, ALL_COMPLETED)
    return future.result()


def _wait(pending: dict[Future, Path | None], return_when: str) -> set[Future]:
    """``wait(pending, return_when=...)``'s done futures, looking every :data:`_POLL_S` s
    whether a second stop signal came (:class:`_Abandoned` then)."""
    while True:
        done, not_done = wait(pending, timeout=_POLL_S, return_when=return_when)
        if at_once():
            raise _Abandoned
        if not not_done or (done and return_when == FIRST_COMPLETED):
            return done


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """End ``pool``'s workers now (they ignore SIGTERM: SIGKILL), in the middle of their files,
    and shut the pool down, so that its queues and their semaphores are released."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError):  # already gone
            pass
    pool.shutdown(wait=True, cancel_futures=True)


def _pool(jobs: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")  # no fork: safe with OpenMP threads
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_pool_worker)


def _analyse_queue(
    pool: ProcessPoolExecutor, queue: Iterator[Path], work: Callable[[Path], Analysed], in_flight: int,
    stop: Callable[[], bool],
) -> Generator[Analysed, None, tuple[list[Path], bool]]:
    """Run ``work`` on the files of ``queue`` on ``pool``, ``in_flight`` at a time, until
    the queue is done or ``stop()``.

    Returns ``([], True)`` when all are done (or stopped), or ``(files whose analysis was
    lost, False)`` when a worker died and broke the pool.
    """
    pending: dict[Future, Path] = {}
    for path in queue:
        if stop():
            break
        try:
            pending[_submit(pool, work, path)] = path
        except BrokenProcessPool:
            lost = yield from _drain(pending)
            return [path, *lost], False
        if len(pending) >= in_flight:
            lost = yield from _drain(pending, FIRST_COMPLETED)
            if lost:
                return lost, False
    while pending:  # the last ones, each yielded as soon as it is done
        lost = yield from _drain(pending, FIRST_COMPLETED)
        if lost:
            return lost, False
    return [], True


def _drain(pending: dict[Future, Path], return_when: str = ALL_COMPLETED) -> Generator[Analysed, None, list[Path]]:
    """Yield the results of the ``pending`` futures that are done (``FIRST_COMPLETED``: at
    least one; ``ALL_COMPLETED``: all), removing them. When the pool broke, all are
    collected and the files whose analysis was lost are returned."""
    done = _wait(pending, return_when)
    broken = any(isinstance(f.exception(), BrokenProcessPool) for f in done)
    if broken:
        done = set(pending)  # a broken pool fails every unfinished future at once
    lost = []
    for future in done:
        path = pending.pop(future)
        error = future.exception()
        if isinstance(error, BrokenProcessPool):
            lost.append(path)
        else:
            yield future.result()
    return lost
