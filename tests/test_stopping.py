"""Stopping cleanly and bounded resources (#18): signals, orphans, FIFOs, hostile files,
full disks, damaged samples.

The scans here run as commands in child processes, stopped the way users, shells and
service managers stop them; what they leave behind is checked from outside.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from click.testing import CliRunner

import audiofactory
from genre_tagger.cli import main
from genre_tagger.pipeline import analysis, audio
from genre_tagger.pipeline.cache import Cache
from genre_tagger.plugins import registry
from genre_tagger.tagging.tags import TagError, read_genres

CLI = [sys.executable, "-c", "import sys; from genre_tagger.cli import main; sys.argv[0] = 'genre-tagger'; main()"]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """16 seven-second tracks: enough that a scan is still going when it is stopped."""
    root = tmp_path_factory.mktemp("library")
    for i in range(16):
        audiofactory.write(root / f"{i:02d}.flac", audiofactory.music_like(7, seed=i))
    return root


class Scan:
    """A scan command in a child process whose lines are read as they come."""

    def __init__(self, *args: object):
        self.process = subprocess.Popen([*CLI, "scan", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=dict(os.environ, COLUMNS="300"))
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, count: int, words: str = "would tag", timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while sum(words in line for line in self.lines) < count:
            assert self.process.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.05)

    def family(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def ended(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return code


def _gone_within(processes: list[psutil.Process], seconds: float) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=seconds)
    return not alive


def _cached_results(cache: Path) -> int:
    import sqlite3

    with sqlite3.connect(cache) as db:
        return db.execute("SELECT count(*) FROM results").fetchone()[0]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("where", [["--jobs", "2"], ["--cluster", "local", "--jobs", "2"]])
def test_a_signal_stops_the_scan_cleanly_and_the_next_run_resumes(signum, where, library, tiny_models, tmp_path):
    if "--cluster" in where:
        pytest.importorskip("distributed", reason="needs Dask: pip install 'genre-tagger[dask]'")
    cache, report = tmp_path / "cache.sqlite", tmp_path / "report.csv"
    scan = Scan(library, "--models-dir", tiny_models, "--model", "knn", "--cache", cache, "--report", report, *where)
    scan.wait_for(2)
    workers = scan.family()
    assert workers, "the scan runs its analysis in worker processes"
    scan.process.send_signal(signum)
    code = scan.ended()
    output = "".join(scan.lines)
    assert code == 128 + signum, output
    assert "Traceback" not in output and "SystemError" not in output
    assert output.count("error:") == 1 and "what finished is cached" in output
    assert _gone_within(workers, 2), "a worker outlived the scan"
    rows = list(csv.DictReader(report.open()))
    statuses = [row["status"] for row in rows]
    assert len(rows) == 16 and "interrupted" in statuses and statuses.count("would tag") >= 2
    finished = _cached_results(cache)
    assert finished >= statuses.count("would tag")
    again = CliRunner().invoke(main, ["scan", str(library), "--models-dir", str(tiny_models), "--model", "knn",
                                      "--cache", str(cache)])
    assert again.exit_code == 0 and f"{finished} from cache" in again.output


@pytest.mark.parametrize("where", [["--jobs", "2"], ["--cluster", "local", "--jobs", "2"]])
def test_no_worker_outlives_a_killed_scan(where, library, tiny_models, tmp_path):
    if "--cluster" in where:
        pytest.importorskip("distributed", reason="needs Dask: pip install 'genre-tagger[dask]'")
    scan = Scan(library, "--models-dir", tiny_models, "--model", "knn", "--no-cache", *where)
    scan.wait_for(1)
    family = scan.family()
    assert family
    scan.process.kill()
    scan.ended()
    assert _gone_within(family, 2), [p.pid for p in family if p.is_running()]


_COUNTS = re.compile(r"(\d+) files \(.*?\) in [\d.]+ s: (\d+) from cache, (\d+) analysed(?:, (\d+) interrupted)?")
_BLANK_ROW = re.compile(r"^[│|]\s+[│|]\s*\d+\s*[│|]", re.MULTILINE)  # a summary row with no genre or status


def _counts(output: str) -> tuple[int, int, int, int]:
    """``(files, from cache, analysed, interrupted)`` of a scan's summary line."""
    match = _COUNTS.search(output)
    assert match, output
    return tuple(int(group or 0) for group in match.groups())


def test_a_stopped_scan_counts_what_came_from_the_cache_was_analysed_and_was_interrupted(library, tiny_models, tmp_path):
    cache, report = tmp_path / "cache.sqlite", tmp_path / "report.csv"
    first = sorted(library.iterdir())[:3]
    done = CliRunner().invoke(main, ["scan", *map(str, first), "--models-dir", str(tiny_models), "--model", "knn",
                                     "--cache", str(cache)])
    assert done.exit_code == 0, done.output
    scan = Scan(library, "--models-dir", tiny_models, "--model", "knn", "--cache", cache, "--report", report)
    scan.wait_for(len(first) + 2)  # the cached three, and two analysed
    scan.process.send_signal(signal.SIGINT)
    assert scan.ended() == 130
    output = "".join(scan.lines)
    statuses = [row["status"] for row in csv.DictReader(report.open())]
    files, from_cache, analysed, interrupted = _counts(output)
    assert (files, from_cache) == (16, 3), output
    assert interrupted == statuses.count("interrupted") > 0, output
    assert analysed == 16 - 3 - interrupted >= 2, output
    assert not _BLANK_ROW.search(output), output
    assert f"after {16 - interrupted} of 16 files" in output


def test_a_second_ctrl_c_stops_at_once(library, tiny_models, tmp_path):
    scan = Scan(library, "--models-dir", tiny_models, "--model", "knn", "--no-cache", "--jobs", "2")
    scan.wait_for(1)
    family = scan.family()
    scan.process.send_signal(signal.SIGINT)
    time.sleep(0.2)  # two signals, not one the kernel merges
    scan.process.send_signal(signal.SIGINT)
    started = time.monotonic()
    assert scan.ended() == 130
    assert time.monotonic() - started < 5
    assert _gone_within(family, 2)
    output = "".join(scan.lines)
    # it still says what it did, each file counted once, and leaves no semaphore behind
    files, from_cache, analysed, interrupted = _counts(output)
    assert files == 16 and from_cache == 0 and analysed >= 1 and interrupted >= 1 and analysed + interrupted == 16
    assert not _BLANK_ROW.search(output), output
    assert "stopped by a second Ctrl-C (SIGINT)" in output
    assert "leaked" not in output and "Traceback" not in output, output


def test_write_stopped_leaves_every_file_untouched_or_tagged_and_journaled(library, tiny_models, tmp_path):
    import json
    import shutil

    copy = tmp_path / "lib"
    shutil.copytree(library, copy)
    originals = {p.name: p.read_bytes() for p in copy.iterdir()}
    journal = tmp_path / "j.jsonl"
    scan = Scan(copy, "--models-dir", tiny_models, "--model", "knn", "--no-cache", "--write", "--journal", journal)
    scan.wait_for(2, "tagged")
    scan.process.send_signal(signal.SIGTERM)
    assert scan.ended() == 143
    journalled = {Path(r["path"]).name for r in map(json.loads, journal.read_text().splitlines()) if "path" in r}
    for path in copy.iterdir():
        if path.read_bytes() == originals[path.name]:
            continue
        assert read_genres(path) and path.name in journalled  # tagged whole, and journalled


# --------------------------------------------------------------------------- files that must not block or swell


def test_a_fifo_in_place_of_a_file_is_refused_without_blocking(tmp_path, tiny_models):
    from genre_tagger.models.catalogue import load
    from genre_tagger.tagging.scan import ScanOptions, Scanner

    fifo = tmp_path / "song.mp3"
    os.mkfifo(fifo)
    done = threading.Event()

    def scan():
        with Cache(None) as cache:
            summary = Scanner(load(tiny_models / "knn", registry()), ScanOptions(), cache).scan([fifo])
        results.append(summary.results[0])
        done.set()

    results: list = []
    threading.Thread(target=scan, daemon=True).start()
    assert done.wait(30), "the scan blocked on a FIFO"
    assert results[0].status == "failed" and "FIFO" in results[0].error and "song.mp3" in results[0].error
    with pytest.raises(TagError, match="not a regular file"):
        read_genres(fifo)


def _one_hertz_flac(tmp_path: Path) -> Path:
    """A real FLAC whose stream header claims 1 Hz and 65535-sample blocks (as crafted in #18)."""
    path = audiofactory.write(tmp_path / "one_hertz.flac", audiofactory.music_like(5))
    data = bytearray(path.read_bytes())
    info = 8  # STREAMINFO's data: after "fLaC" and its block header
    data[info : info + 4] = struct.pack(">HH", 65535, 65535)
    data[info + 10] = 0
    data[info + 11] = 0
    data[info + 12] = (1 << 4) | (data[info + 12] & 0x0F)  # 20-bit sample rate: 1
    path.write_bytes(bytes(data))
    return path


def _one_hertz_wav(tmp_path: Path) -> Path:
    path = audiofactory.write(tmp_path / "one_hertz.wav", audiofactory.music_like(5))
    data = bytearray(path.read_bytes())
    fmt = data.index(b"fmt ")
    data[fmt + 12 : fmt + 20] = struct.pack("<II", 1, 2)  # 1 Hz, 2 bytes per second
    path.write_bytes(bytes(data))
    return path


def test_hostile_headers_are_refused_before_decoding_under_a_memory_limit(tmp_path, tiny_models):
    """Under a 4 GB address-space limit, as a hostile file once took 8.4 GB: each fails alone."""
    folder = tmp_path / "lib"
    folder.mkdir()
    good = audiofactory.write(folder / "good.flac", audiofactory.music_like(7))
    for make in (_one_hertz_flac, _one_hertz_wav):
        make(folder)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
    command = [sys.executable, "-c", limit + CLI[2], "scan", str(folder), "--models-dir", str(tiny_models),
               "--model", "knn", "--no-cache", "--report", str(tmp_path / "r.csv")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ, COLUMNS="300"))
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {Path(row["path"]).name: row for row in csv.DictReader((tmp_path / "r.csv").open())}
    assert rows[good.name]["status"] == "would tag"
    for name in ("one_hertz.flac", "one_hertz.wav"):  # refused from the header (its rate, or the duration it makes)
        error = rows[name]["error"]
        assert rows[name]["status"] == "failed" and ("sample rate of 1 Hz" in error or "hours of audio" in error), error


def test_an_analysis_that_would_take_too_much_memory_fails_alone(tmp_path, monkeypatch):
    path = audiofactory.write(tmp_path / "a.wav", audiofactory.music_like(4))
    extractor = registry().feature_extractor("gtzan57")
    monkeypatch.setattr(type(extractor), "extract", lambda self, segments: np.ones(analysis.MEMORY_HEADROOM * 2, np.uint8))
    result = analysis.analyse(path, ("gtzan57",), None)
    assert result.features is None and "more than 2 GB of memory" in result.error and str(path) in result.error
    monkeypatch.undo()
    assert analysis.analyse(path, ("gtzan57",), None).error is None  # the limit is lifted afterwards


def test_nan_samples_are_one_line(tmp_path):
    import soundfile

    y = audiofactory.music_like(5)
    y[1000:1100] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, y, 22050, subtype="FLOAT")
    with pytest.raises(audio.AudioError, match="NaN or infinite samples") as raised:
        audio.load(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


# --------------------------------------------------------------------------- full disks


@pytest.fixture
def full_disk(tmp_path):
    """A tiny tmpfs, filled: where mounting is allowed (root), else skipped."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        with open(mount / "filler", "wb") as f:
            try:
                f.write(b"\0" * (1 << 20))
            except OSError:
                pass
        yield mount
    finally:
        subprocess.run(["umount", str(mount)])


def test_a_full_disk_is_a_one_line_error_before_any_analysis(full_disk, library, tiny_models, tmp_path):
    runner = CliRunner()
    for option in (["--report", str(full_disk / "r.csv")], ["--write", "--journal", str(full_disk / "j.jsonl")]):
        done = runner.invoke(main, ["scan", str(library), "--models-dir", str(tiny_models), "--no-cache", *option])
        assert done.exit_code == 2, done.output
        assert "no space left on device" in done.output.lower() and "Traceback" not in done.output
        assert "analysed" not in done.output
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # nothing half-written left behind


def test_a_report_that_cannot_be_written_at_the_end_is_one_line(library, tiny_models, tmp_path, monkeypatch):
    from genre_tagger.tagging import report as report_module

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    report = tmp_path / "r.csv"
    real_open = open
    monkeypatch.setattr(report_module, "open", lambda path, mode="r", *a, **k: (
        no_space() if str(path).endswith(".r.csv.tmp") and "w" in mode and "newline" in k else real_open(path, mode, *a, **k)),
        raising=False)
    done = CliRunner().invoke(main, ["scan", str(library / "00.flac"), "--models-dir", str(tiny_models), "--no-cache",
                                     "--report", str(report)])
    assert done.exit_code == 1 and "cannot be written" in done.output and "Traceback" not in done.output
    assert not list(tmp_path.glob(".r.csv.tmp")) and not report.exists()


def test_a_second_signal_waits_for_a_tag_write_and_its_journal_record():
    """Inside ``uninterrupted`` (a tag write and its journal record), a second signal takes
    effect at the end of the block, never between the two."""
    from genre_tagger.pipeline.stopping import StopRequest, uninterrupted

    said: list[str] = []
    with StopRequest(on_second=lambda signum: said.append(f"stop {signum}")) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # Python runs the handler between bytecodes
        assert stop() and not said
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            said.append("file written")
            said.append("journal record")
        assert said == ["file written", "journal record", f"stop {int(signal.SIGINT)}"]
