"""Analysing many files on a Dask cluster (``scan --cluster ADDRESS``).

Only the analysis (decode + features, :func:`genre_tagger.pipeline.analysis.analyse`) runs on the
cluster's workers; the results come back here, where prediction, the cache, the report
and tag writes stay, so there is still one writer. Workers import genre_tagger and load
the plugins from their own environment, and read the audio files at the same paths as
this machine (shared storage).

Dask is an optional extra (``pip install 'genre-tagger[dask]'``) and is imported only
when a cluster is used.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from genre_tagger import __version__
from genre_tagger.pipeline.analysis import Analysed, analyse
from genre_tagger.pipeline.stopping import exit_with_parent, never
from genre_tagger.pipeline.workers import start_worker
from genre_tagger.plugins import registry

log = logging.getLogger(__name__)

LOCAL = "local"  # --cluster local: a Dask cluster of --jobs processes on this machine
CONNECT_TIMEOUT_S = 10.0  # how long to try to reach the scheduler before giving up
MISSING_DASK = "the --cluster option needs Dask: pip install 'genre-tagger[dask]'"
_REFRESH_S = 5.0  # how often the number of worker threads (and so of files in flight) is refreshed
_DISTRIBUTION = "genre-tagger"


class ClusterError(Exception):
    """The cluster cannot be used (Dask missing, scheduler unreachable or lost): a one-line
    message; ``exit_code`` is 2 (a usage error) unless the scan was under way (1)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(" ".join(str(message).split()))
        self.exit_code = exit_code


def _warn(message: str) -> None:
    log.warning("%s", message)


def analyse_on_cluster(
    paths: Iterable[Path],
    extractor_names: Sequence[str],
    max_segments: int | None,
    address: str,
    jobs: int = 1,
    stop: Callable[[], bool] = never,
) -> Iterator[Analysed]:
    """Analyse ``paths`` on the Dask cluster at ``address`` (``tcp://HOST:8786``), or on a
    local cluster of ``jobs`` single-threaded processes when ``address`` is ``"local"``;
    yield the results as they complete (not in input order), one per path.

    At most about twice as many files as the cluster has worker threads are in flight, so
    any number of files makes a bounded number of futures; more are submitted as results
    arrive. Dask reruns the tasks of a worker that is lost, so a lost worker only delays its
    files; a file on which workers die again and again (Dask's ``allowed-failures``) gets
    an ``error``, as does a task that fails (after one retry). Nothing connects when there
    is nothing to analyse. Once ``stop()`` is true no file is sent; those in flight are
    still yielded. The workers of a local cluster leave SIGINT and SIGTERM to this process
    and end with it, SIGKILL included (:mod:`genre_tagger.pipeline.stopping`).

    Raises :class:`ClusterError` when Dask is not installed, the scheduler cannot be
    reached within :data:`CONNECT_TIMEOUT_S`, or the connection to it is lost mid-scan.
    """
    queue = iter(paths)
    first = next(queue, None)
    if first is None:
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ClusterError(MISSING_DASK) from None
    extractor_names = tuple(extractor_names)
    # Each worker checks that its feature extractors are the ones the model was made for.
    wanted = {name: registry().feature_extractor(name).version for name in extractor_names}

    cluster = None
    client = None
    try:
        if address == LOCAL:
            try:
                cluster = LocalCluster(
                    n_workers=max(1, jobs), threads_per_worker=1, processes=True, dashboard_address=":0",
                    silence_logs=logging.ERROR, preload=[__name__],  # dask_setup below, in each worker
                )
            except Exception as error:
                raise ClusterError(f"cannot start a local Dask cluster: {_one_line(error)}") from None
            client = Client(cluster, set_as_default=False)
        else:
            _check_address(address)
            try:
                client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as error:
                raise ClusterError(f"cannot reach the Dask scheduler at {address}: {_one_line(error)}") from None
        yield from _run(client, as_completed, first, queue, extractor_names, max_segments, wanted, address, stop)
    finally:
        # Closing after the scheduler went away makes Dask log tracebacks of its aborted
        # reconnection; the one-line error says what happened.
        client_log = logging.getLogger("distributed.client")
        level = client_log.level
        client_log.setLevel(logging.CRITICAL)
        try:
            for closable in (client, cluster):
                if closable is not None:
                    try:
                        closable.close(timeout=CONNECT_TIMEOUT_S)
                    except Exception:  # must not hide the real error
                        pass
        finally:
            client_log.setLevel(level)


def dask_setup(worker) -> None:
    """Dask's preload hook, run in each worker process of a local cluster as it starts."""
    start_worker()
    exit_with_parent(kernel=False)  # the parent-death signal would follow the nanny's thread, not the process


def _run(client, as_completed, first: Path, queue: Iterator[Path], extractor_names: tuple[str, ...],
         max_segments: int | None, wanted: dict[str, str], address: str, stop: Callable[[], bool]) -> Iterator[Analysed]:
    _check_versions(client, address)
    threads = _threads(client)
    if threads == 0:
        _warn(f"no workers are connected to the Dask scheduler at {address} yet; waiting for some to join")
    refreshed = time.monotonic()
    pending: dict = {}  # future -> the path as given (results carry it, not the absolute one)
    done_count = 0
    completed = as_completed(loop=client.loop)

    def submit(path: Path) -> None:
        # Workers have another working directory: send the absolute path (shared storage).
        future = client.submit(
            _analyse_on_worker, path.absolute(), extractor_names, max_segments, wanted,
            pure=False, retries=1, key=f"genre-tagger-analyse-{_unique()}",
        )
        pending[future] = path
        completed.add(future)

    def fill() -> None:
        limit = max(4, 2 * threads)
        while len(pending) < limit and not stop():
            path = next(queue, None)
            if path is None:
                return
            submit(path)

    submit(first)
    fill()
    for future in completed:
        path = pending.pop(future)
        if stop() and not pending:
            completed.clear()  # nothing more is sent: once this one is handed back, done
        if future.status == "cancelled":
            # The client lost its scheduler (and gave up reconnecting): the work is gone.
            raise ClusterError(
                f"lost the connection to the Dask scheduler at {address} after {done_count} files; "
                "the results so far are cached (unless --no-cache): run the same scan again to go on", exit_code=1,
            )
        yield _result(future, path)
        done_count += 1
        if time.monotonic() - refreshed > _REFRESH_S:
            threads, refreshed = _threads(client), time.monotonic()
        fill()


def _result(future, path: Path) -> Analysed:
    """The Analysed of a finished future, for ``path`` as given."""
    try:
        error = future.exception()
    except Exception as error_getting:  # e.g. cancelled between the check and here
        error = error_getting
    if error is None:
        try:
            result = future.result()
        except Exception as error_getting:
            error = error_getting
        else:
            result.path = path
            return result
    if type(error).__name__ == "KilledWorker":
        message = "the analysis process crashed on this file (Dask workers died running it)"
    else:
        message = f"analysis on the Dask cluster failed: {type(error).__name__}: {_one_line(error)}"
    return Analysed(path, error=f"{path}: {message}")


def _analyse_on_worker(path: Path, extractor_names: tuple[str, ...], max_segments: int | None,
                       wanted: dict[str, str]) -> Analysed:
    """:func:`genre_tagger.workers.analyse` on a worker whose feature extractors are the
    versions in ``wanted`` (features of another version would not fit the model)."""
    try:
        plugins = registry()
        for name, version in wanted.items():
            have = plugins.feature_extractor(name).version
            if have != version:
                return Analysed(path, error=(
                    f"{path}: the Dask worker on {socket.gethostname()} has feature extractor {name} version {have}, "
                    f"the client {version}: install the same genre-tagger and plugins on every worker"
                ))
    except Exception as error:
        return Analysed(path, error=f"{path}: plugins on the Dask worker on {socket.gethostname()}: {_one_line(error)}")
    return analyse(path, extractor_names, max_segments)


def _check_address(address: str) -> None:
    """A usage error for what cannot be a scheduler address (before any connection)."""
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address, strict=False)
        get_backend(scheme)
    except ValueError as error:
        raise ClusterError(f"--cluster {address}: not a Dask scheduler address ({_one_line(error)}); "
                           "expected tcp://HOST:8786 or 'local'") from None
    if not location.strip(":"):
        raise ClusterError(f"--cluster {address}: not a Dask scheduler address; expected tcp://HOST:8786 or 'local'")


def _check_versions(client, address: str) -> None:
    """Warn about workers with another genre-tagger version than this client (or none)."""
    try:
        mine = metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        mine = __version__
    try:
        versions = client.get_versions(packages=[_DISTRIBUTION])
    except Exception as error:
        _warn(f"could not check the genre-tagger version of the Dask workers at {address}: {_one_line(error)}")
        return
    differ = {}
    for worker, info in sorted((versions.get("workers") or {}).items()):
        theirs = ((info or {}).get("packages") or {}).get(_DISTRIBUTION)
        if theirs != mine:
            differ[worker] = theirs or "not installed"
    if differ:
        listed = ", ".join(f"{worker} ({version})" for worker, version in list(differ.items())[:5])
        more = f" and {len(differ) - 5} more" if len(differ) > 5 else ""
        _warn(f"this client has genre-tagger {mine} but Dask workers differ: {listed}{more}; "
              "install the same genre-tagger and plugins on every worker")


def _threads(client) -> int:
    try:
        return sum(client.nthreads().values())
    except Exception:
        return 0


def _unique() -> str:
    return uuid.uuid4().hex


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


__all__ = ["analyse_on_cluster", "ClusterError", "CONNECT_TIMEOUT_S", "LOCAL", "MISSING_DASK"]
