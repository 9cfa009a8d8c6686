"""`genre-tagger scan --cluster`: the analysis on a real Dask cluster, the rest on the client.

One LocalCluster of two single-threaded worker processes serves the module; scans through
it must give the very report a single-machine scan gives, survive a worker killed
mid-scan, and tag through the client.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import audiofactory
from genre_tagger import display
from genre_tagger.cli import main
from genre_tagger.pipeline import cluster as cluster_module
from genre_tagger.pipeline import dispatch, workers
from genre_tagger.tagging.report import read_csv
from genre_tagger.tagging.tags import read_genres

distributed = pytest.importorskip("distributed", reason="needs Dask: pip install 'genre-tagger[dask]'")

FORMATS = ["flac", "mp3", "ogg", "wav"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def metal(seconds: float, seed: int):
    return (audiofactory.noise(seconds, seed=seed, amplitude=0.3) + audiofactory.clicks(seconds, bpm=150)).clip(-1, 1)


def classical(seconds: float, seed: int):
    return audiofactory.tone(seconds, freq=220 * (1 + seed / 4), amplitude=0.3) + audiofactory.tone(seconds, freq=330, amplitude=0.1)


def make_library(root: Path, copies: int = 1, seconds: float = 7) -> Path:
    """``copies`` x (a metal-like and a classical-like file per format), plus one broken file."""
    for copy in range(copies):
        for i, ext in enumerate(FORMATS):
            folder = root / f"disc{copy}" / f"artist{i % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            audiofactory.write(folder / f"metal{i}.{ext}", metal(seconds, seed=copy * 10 + i))
            audiofactory.write(folder / f"classical{i}.{ext}", classical(seconds, seed=i))
    (root / "broken.mp3").write_bytes(b"\x00garbage" * 100)
    return root


@pytest.fixture(scope="module")
def dask_cluster():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", scheduler_port=0,
        dashboard_address=":0", silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster, set_as_default=False)
    client.run(workers.start_worker)  # warm up: import librosa, load the plugins
    try:
        yield cluster, client
    finally:
        client.close()
        cluster.close()


@pytest.fixture
def no_local_analysis(monkeypatch):
    """Analysing in this process fails the test: the work must go to the cluster."""

    def refuse(*args, **kwargs):
        raise AssertionError("analysed on the client, not on the cluster")

    monkeypatch.setattr(workers, "analyse", refuse)
    monkeypatch.setattr(cluster_module, "analyse", refuse)


def scan_report(library: Path, models: Path, report: Path, *options) -> str:
    result = run("scan", library, "--model", "knn", "--models-dir", models, "--no-cache", "--report", report, *options)
    assert result.exit_code == 1, result.output  # the broken file
    return report.read_text()


def test_cluster_report_equals_a_single_machine_scan(dask_cluster, tiny_models, tmp_path, monkeypatch):
    cluster, _ = dask_cluster
    library = make_library(tmp_path / "Music")
    alone = scan_report(library, tiny_models, tmp_path / "alone.csv")
    rows = {Path(r.path).name: r for r in read_csv(tmp_path / "alone.csv")}
    assert rows["broken.mp3"].status == "failed" and "broken.mp3" in rows["broken.mp3"].error
    assert {r.genre for name, r in rows.items() if name.startswith("metal")} == {"Metal"}
    assert {r.genre for name, r in rows.items() if name.startswith("classical")} == {"Classical"}

    monkeypatch.setattr(workers, "analyse", lambda *a, **k: pytest.fail("analysed on the client"))
    monkeypatch.setattr(cluster_module, "analyse", lambda *a, **k: pytest.fail("analysed on the client"))
    on_cluster = scan_report(library, tiny_models, tmp_path / "cluster.csv", "--cluster", cluster.scheduler_address)
    assert on_cluster == alone


def test_cluster_local_is_sized_by_jobs(tiny_models, tmp_path, no_local_analysis):
    library = make_library(tmp_path / "Music")
    result = CliRunner().invoke(main, ["scan", str(library), "--model", "knn", "--models-dir", str(tiny_models),
                                       "--no-cache", "--report", str(tmp_path / "local.csv"), "--cluster", "local",
                                       "--jobs", "2"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    rows = {Path(r.path).name: r for r in read_csv(tmp_path / "local.csv")}
    assert len(rows) == 2 * len(FORMATS) + 1
    assert rows["broken.mp3"].status == "failed"
    for name, row in rows.items():
        if name != "broken.mp3":
            assert row.status == "would tag" and row.genre == ("Metal" if name.startswith("metal") else "Classical"), row


def test_write_through_the_cluster_tags_files_and_fills_the_cache(dask_cluster, tiny_models, tmp_path, no_local_analysis):
    cluster, _ = dask_cluster
    library = make_library(tmp_path / "Music")
    (library / "broken.mp3").unlink()
    cache = tmp_path / "cache.sqlite"
    result = run("scan", library, "--model", "knn", "--models-dir", tiny_models, "--cache", cache, "--write",
                 "--journal", tmp_path / "journal.jsonl", "--report", tmp_path / "r.csv",
                 "--cluster", cluster.scheduler_address)
    assert result.exit_code == 0, result.output
    files = sorted(p for p in library.rglob("*") if p.is_file())
    assert len(files) == 2 * len(FORMATS)
    for path in files:
        assert read_genres(path) == (["Metal"] if path.name.startswith("metal") else ["Classical"]), path
    assert {r.status for r in read_csv(tmp_path / "r.csv")} == {"tagged"}
    # the client wrote the cache: a second scan needs no cluster at all (nothing to analyse)
    again = run("scan", library, "--model", "knn", "--models-dir", tiny_models, "--cache", cache,
                "--cluster", "tcp://127.0.0.1:9")
    assert again.exit_code == 0, again.output
    assert f"{len(files)} from cache," in again.output


CHILD = "import sys; from genre_tagger.cli import main; sys.argv[0] = 'genre-tagger'; main()"


def test_a_worker_lost_mid_scan_only_delays_its_files(dask_cluster, tiny_models, tmp_path):
    cluster, client = dask_cluster
    library = make_library(tmp_path / "Music", copies=2, seconds=15)  # 16 files of 15 s + the broken one
    scan = subprocess.Popen(
        [sys.executable, "-c", CHILD, "scan", str(library), "--model", "knn", "--models-dir", str(tiny_models),
         "--no-cache", "--report", str(tmp_path / "cluster.csv"), "--quiet",
         "--cluster", cluster.scheduler_address],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline and scan.poll() is None:
            # wait until a worker is busy with a file of the scan
            busy = [w for w, keys in client.processing().items()
                    if any(str(k).startswith("genre-tagger-analyse-") for k in keys)]
            if busy:
                victim = busy[0]
            else:
                time.sleep(0.05)
        assert victim is not None, "the scan ended before a worker could be killed"
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        output, _ = scan.communicate(timeout=120)
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait()
    assert scan.returncode == 1, output  # only the broken file failed
    assert victim not in client.nthreads()  # really lost (its nanny starts a new one, at another address)

    alone = scan_report(library, tiny_models, tmp_path / "alone.csv")
    assert (tmp_path / "cluster.csv").read_text() == alone
    assert len(read_csv(tmp_path / "cluster.csv")) == 2 * 2 * len(FORMATS) + 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_scheduler_is_a_usage_error(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT_S", 1.0)
    path = audiofactory.write(tmp_path / "a.wav", metal(7, seed=0))
    address = f"tcp://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    result = run("scan", path, "--models-dir", tiny_models, "--no-cache", "--cluster", address)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and address in errors[0] and "cannot reach the Dask scheduler" in errors[0], result.output
    assert "Traceback" not in result.output
    assert time.monotonic() - started < 15

    result = run("scan", path, "--models-dir", tiny_models, "--no-cache", "--cluster", "nonsense://x")
    assert result.exit_code == 2 and "not a Dask scheduler address" in result.output, result.output


def test_without_dask_the_option_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # makes the import fail
    with pytest.raises(cluster_module.ClusterError) as raised:
        list(dispatch.analyse_many([tmp_path / "a.wav"], ["gtzan57"], cluster="tcp://127.0.0.1:8786"))
    assert str(raised.value) == cluster_module.MISSING_DASK
    assert raised.value.exit_code == 2
    # nothing to analyse: nothing to connect to
    assert list(dispatch.analyse_many([], ["gtzan57"], cluster="tcp://127.0.0.1:8786")) == []


def test_workers_with_other_versions_are_reported(tmp_path, capsys):
    class FakeClient:
        def get_versions(self, packages):
            return {"workers": {"tcp://w1:1": {"packages": {"genre-tagger": "0.0.9"}},
                                "tcp://w2:1": {"packages": {"genre-tagger": None}},
                                "tcp://w3:1": {"packages": {"genre-tagger": cluster_module.metadata.version("genre-tagger")}}}}

    display.show_library_warnings()  # as the command does: the library's warnings on stderr
    cluster_module._check_versions(FakeClient(), "tcp://s:8786")
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and warning.startswith("warning:")
    assert "tcp://w1:1 (0.0.9)" in warning and "tcp://w2:1 (not installed)" in warning and "w3" not in warning

    # a worker whose feature extractor is another version gives failed files, not wrong genres
    path = audiofactory.write(tmp_path / "a.wav", metal(7, seed=0))
    analysed = cluster_module._analyse_on_worker(path, ("gtzan57",), 1, {"gtzan57": "0.0-other"})
    assert analysed.features is None and "feature extractor gtzan57 version" in analysed.error
    assert cluster_module._analyse_on_worker(path, ("gtzan57",), 1, {}).error is None
