"""Reliability of a scan: bad and unusual input, files that change under it, damaged
model bundles, a shared cache, and CSV reports that survive any file name.

The corpus is generated here (never committed). Decisions these tests pin down:

* every file gets exactly one row; a file that cannot be used is ``failed`` with a
  one-line ``error`` that starts with its path and says why;
* a truncated file is analysed from the part that is there (like the ``ffmpeg`` command
  line), so a truncated mp3 that still holds a whole segment gets a genre;
* a file shorter than one 3-second segment is ``failed: ... shorter than one ... segment``;
* silence (every analysed segment below -60 dBFS) is ``uncertain`` with genre
  ``unknown`` and is never tagged: there is no genre to tell (the tiny models would
  otherwise call it "classical" with full confidence); the error column says "silent";
* the results of the other files equal those of a scan without the bad files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

import audiofactory
from genre_tagger.pipeline import cache as cache_module
from genre_tagger.tagging import library
from genre_tagger.pipeline.cache import Cache
from genre_tagger.cli import main
from genre_tagger.tagging.report import read_csv, write_csv
from genre_tagger.tagging.scan import ScanOptions, Scanner, TrackResult
from genre_tagger.segments import DEFAULT_MAX_SEGMENTS
from genre_tagger.tagging.tags import read_genres, write_genres

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SECONDS = 3.5  # one 3-second segment: quick to analyse
CLI = [sys.executable, "-c", "from genre_tagger.cli import main; main()"]


def run(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def metal_like(seconds: float = SECONDS, sr: int = 22050, seed: int = 0) -> np.ndarray:
    """Noise and clicks: what the tiny models call "metal"."""
    signal_ = audiofactory.noise(seconds, sr, amplitude=0.3, seed=seed) + audiofactory.clicks(seconds, sr, bpm=150)
    return signal_.clip(-1, 1).astype(np.float32)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def by_name(rows: list[TrackResult]) -> dict[str, TrackResult]:
    return {os.path.basename(r.path): r for r in rows}


def bytes_name(folder: Path, name: bytes) -> Path:
    """``folder/name`` for a file name that is not UTF-8 (a str with surrogate escapes)."""
    return Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))


# --------------------------------------------------------------------------- the corpus

# name -> (status, genre as tagged, words the error must contain)
EXPECTED = {
    "empty.mp3": ("failed", "", "empty file"),
    "random.mp3": ("failed", "", "not an audio file"),
    "text.flac": ("failed", "", "not an audio file"),
    "half_second.wav": ("failed", "", "shorter than one"),
    "silence.wav": ("uncertain", "unknown", "silent"),
    "truncated.mp3": ("would tag", "Metal", ""),
    "u8.wav": ("would tag", "Metal", ""),
    "s24.wav": ("would tag", "Metal", ""),
    "float.wav": ("would tag", "Metal", ""),
    "rate8k.wav": ("would tag", "Metal", ""),
    "rate96k.flac": ("would tag", "Metal", ""),
    "stereo.flac": ("would tag", "Metal", ""),
    "six_channels.wav": ("would tag", "Metal", ""),
    os.fsdecode(b"caf\xe9.wav"): ("would tag", "Metal", ""),  # a name that is not UTF-8
}


def make_bad_corpus(folder: Path) -> None:
    """Bad and unusual files, each named in :data:`EXPECTED`, plus two symlink loops."""
    folder.mkdir(parents=True)
    (folder / "empty.mp3").write_bytes(b"")
    whole = audiofactory.write(folder / "whole.tmp.mp3", metal_like(8)).read_bytes()
    (folder / "whole.tmp.mp3").unlink()
    (folder / "truncated.mp3").write_bytes(whole[: len(whole) // 2])  # ~4 s of an 8 s mp3
    (folder / "random.mp3").write_bytes(np.random.default_rng(1).bytes(40_000))
    (folder / "text.flac").write_text("This is not a FLAC file.\n" * 50)
    audiofactory.write(folder / "half_second.wav", metal_like(0.5))
    soundfile.write(folder / "silence.wav", np.zeros(int(22050 * SECONDS), np.float32), 22050, subtype="PCM_16")
    for name, subtype in (("u8.wav", "PCM_U8"), ("s24.wav", "PCM_24"), ("float.wav", "FLOAT")):
        soundfile.write(folder / name, metal_like(), 22050, subtype=subtype)
    soundfile.write(folder / "rate8k.wav", metal_like(sr=8000), 8000, subtype="PCM_16")
    soundfile.write(folder / "rate96k.flac", metal_like(sr=96000), 96000, subtype="PCM_24")
    soundfile.write(folder / "stereo.flac", np.stack([metal_like(seed=1), metal_like(seed=2)], axis=1), 22050)
    soundfile.write(folder / "six_channels.wav", np.stack([metal_like(seed=i) for i in range(6)], axis=1), 22050)
    # soundfile cannot open a non-UTF-8 name: write, then rename through bytes
    soundfile.write(folder / "cafe.tmp.wav", metal_like(), 22050, subtype="PCM_16")
    os.rename(folder / "cafe.tmp.wav", bytes_name(folder, b"caf\xe9.wav"))
    (folder / "up").symlink_to("..", target_is_directory=True)  # a folder loop
    (folder / "self.mp3").symlink_to("self.mp3")  # a link to itself


@pytest.fixture(scope="module")
def corpus_scan(tmp_path_factory, tiny_models):
    """A library of two good files scanned alone, then again with the bad corpus beside them.

    Module-scoped (the autouse user-dir fixture is not active yet): caching is off.
    """
    root = tmp_path_factory.mktemp("corpus") / "Music"
    good = root / "good"
    good.mkdir(parents=True)
    audiofactory.write(good / "loud.flac", metal_like(7))
    calm = audiofactory.tone(7, 22050, 220, 0.3) + audiofactory.tone(7, 22050, 330, 0.1)
    audiofactory.write(good / "calm.mp3", calm)
    reference_report = root.parent / "reference.csv"
    alone = run("scan", root, "--models-dir", tiny_models, "--model", "knn", "--no-cache", "--report", reference_report)
    assert alone.exit_code == 0, alone.output
    make_bad_corpus(root / "bad")
    report = root.parent / "report.csv"
    result = run("scan", root, "--models-dir", tiny_models, "--model", "knn", "--no-cache", "--report", report)
    return {"root": root, "reference": read_csv(reference_report), "result": result, "report": report,
            "rows": read_csv(report)}


def test_every_bad_file_gets_one_clear_line(corpus_scan):
    result, rows = corpus_scan["result"], corpus_scan["rows"]
    assert result.exit_code == 1, result.output  # some failed: exit 1, not a crash
    assert "Traceback" not in result.output
    named = by_name(rows)
    assert len(named) == len(rows), "one row per file"
    assert set(named) == set(EXPECTED) | {"loud.flac", "calm.mp3"}
    for name, (status, genre, words) in EXPECTED.items():
        row = named[name]
        assert row.status == status, (name, row)
        assert "\n" not in row.error and "\r" not in row.error
        if status == "failed":
            assert row.error.startswith(row.path + ": "), row.error
            assert words in row.error, (name, row.error)
        else:
            assert row.genre == genre, (name, row)
            assert words in row.error
    assert named["silence.wav"].segments == 1 and named["silence.wav"].confidence is None
    assert "shorter than one 3.00 s segment" in named["half_second.wav"].error


def test_symlink_loops_are_reported_not_followed(corpus_scan):
    output = " ".join(corpus_scan["result"].output.split())  # rich wraps long lines
    assert "up: symlink loop" in output
    assert "self.mp3: symbolic link loop" in output
    assert len({r.path for r in corpus_scan["rows"]}) == len(corpus_scan["rows"])  # nothing scanned twice


def test_good_files_are_unaffected_by_bad_ones(corpus_scan):
    reference = by_name(corpus_scan["reference"])
    named = by_name(corpus_scan["rows"])
    assert set(reference) == {"loud.flac", "calm.mp3"}
    for name, row in reference.items():
        assert named[name] == row
    assert reference["loud.flac"].genre == "Metal" and reference["calm.mp3"].genre == "Classical"


def test_non_utf8_names_reach_the_report(corpus_scan):
    raw = corpus_scan["report"].read_bytes()
    assert b"/caf\xe9.wav," in raw  # the bytes of the name, as on disk
    names = {os.fsencode(r.path) for r in corpus_scan["rows"]}
    assert os.path.join(os.fsencode(corpus_scan["root"]), b"bad", b"caf\xe9.wav") in names


def test_failed_file_with_a_non_utf8_name(tmp_path, tiny_models):
    bytes_name(tmp_path, b"bad\xff.mp3").write_bytes(np.random.default_rng(2).bytes(20_000))
    report = tmp_path / "r.csv"
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "--models-dir", str(tiny_models), "--model", "knn",
                                       "--report", str(report)])
    rows = read_csv(report)  # written before anything else could go wrong
    assert [(os.fsencode(r.path), r.status) for r in rows] == [(os.path.join(os.fsencode(tmp_path), b"bad\xff.mp3"), "failed")]
    assert rows[0].error.startswith(rows[0].path + ": not an audio file")
    assert b"bad\xff.mp3" in report.read_bytes()
    assert result.exit_code == 1, result.output


def test_unreadable_folder_is_reported_and_the_rest_scanned(tmp_path, tiny_models, monkeypatch):
    """As root no permission bit stops reading a folder: make os.scandir refuse it instead."""
    root = tmp_path / "Music"
    (root / "locked").mkdir(parents=True)
    (root / "open").mkdir()
    audiofactory.write(root / "locked" / "a.wav", metal_like())
    audiofactory.write(root / "open" / "b.wav", metal_like())
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == root / "locked":
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(library.os, "scandir", scandir)
    errors: list[str] = []
    assert list(library.walk([root], errors.append)) == [root / "open" / "b.wav"]
    assert errors == [f"{root / 'locked'}: cannot read folder (Permission denied)"]
    report = tmp_path / "r.csv"
    result = run("scan", root, "--models-dir", tiny_models, "--model", "knn", "--report", report)
    assert result.exit_code == 1  # a skipped folder is worth exit 1
    assert "cannot read folder" in " ".join(result.output.split())
    assert [(Path(r.path).name, r.status) for r in read_csv(report)] == [("b.wav", "would tag")]


@pytest.mark.skipif(AS_ROOT, reason="root reads folders whatever their permission bits; see the test above")
def test_unreadable_folder_by_permissions(tmp_path):
    root = tmp_path / "Music"
    (root / "locked").mkdir(parents=True)
    audiofactory.write(root / "locked" / "a.wav", metal_like(0.5))
    audiofactory.write(root / "b.wav", metal_like(0.5))
    (root / "locked").chmod(0)
    try:
        errors: list[str] = []
        assert list(library.walk([root], errors.append)) == [root / "b.wav"]
        assert len(errors) == 1 and "locked" in errors[0] and "Permission denied" in errors[0]
    finally:
        (root / "locked").chmod(0o755)


def test_file_deleted_during_the_scan(tmp_path, tiny_models):
    from genre_tagger.models import bundle
    from genre_tagger.plugins import registry

    files = [audiofactory.write(tmp_path / f"{name}.wav", metal_like()) for name in "abcd"]
    model = bundle.load(tiny_models / "knn", registry())
    files[3].unlink()  # between the walk and the scan

    def on_result(result, cached):
        if result.path.endswith("a.wav"):
            files[2].unlink()  # during the scan, before c.wav is analysed

    summary = Scanner(model, ScanOptions(), Cache(None), on_result=on_result).scan(files)
    rows = by_name(summary.results)
    assert [rows[n].status for n in ("a.wav", "b.wav", "c.wav", "d.wav")] == ["would tag", "would tag", "failed", "failed"]
    assert rows["c.wav"].error == f"{files[2]}: file not found"
    assert rows["d.wav"].error == f"{files[3]}: No such file or directory"


# --------------------------------------------------------------------------- writing


def test_write_reports_read_only_and_odd_files_and_tags_the_rest(tmp_path, tiny_models):
    root = tmp_path / "Music"
    root.mkdir()
    read_only = audiofactory.write(root / "read_only.flac", metal_like())
    read_only.chmod(0o444)
    fine = audiofactory.write(root / "fine.flac", metal_like())
    audiofactory.write(root / "cafe.tmp.flac", metal_like())
    odd = bytes_name(root, b"caf\xe9.flac")
    os.rename(root / "cafe.tmp.flac", odd)
    before = {p: digest(p) for p in (read_only, odd)}
    report = tmp_path / "r.csv"
    result = run("scan", root, "--models-dir", tiny_models, "--model", "knn", "--write", "--journal", tmp_path / "j.jsonl", "--report", report)
    assert result.exit_code == 1, result.output
    rows = by_name(read_csv(report))
    assert rows["read_only.flac"].status == "failed"
    assert rows["read_only.flac"].error == f"{read_only}: permission denied (the file is read-only)"
    assert digest(read_only) == before[read_only] and stat.S_IMODE(read_only.stat().st_mode) == 0o444
    assert rows["fine.flac"].status == "tagged" and read_genres(fine) == ["Metal"]
    # the scan finished and the report was written; the odd name is tagged or untouched
    odd_row = rows[odd.name]
    assert odd_row.status == "tagged" or (odd_row.status == "failed" and digest(odd) == before[odd]), odd_row
    read_only.chmod(0o644)


def test_non_utf8_name_is_tagged_and_undone(tmp_path, tiny_models):
    audiofactory.write(tmp_path / "x.flac", metal_like())
    odd = bytes_name(tmp_path, b"caf\xe9.flac")
    os.rename(tmp_path / "x.flac", odd)
    journal = tmp_path / "j.jsonl"
    result = run("scan", odd, "--models-dir", tiny_models, "--model", "knn", "--write", "--journal", journal)
    assert result.exit_code == 0, result.output
    assert read_genres(odd) == ["Metal"]
    assert run("undo", journal, "--write").exit_code == 0
    assert read_genres(odd) == []


def test_file_changed_after_analysis_is_not_written(tmp_path, tiny_models, monkeypatch):
    """Changed between its analysis and the write: reported, and the change is kept."""
    import genre_tagger.models.predicting as predicting_module
    import genre_tagger.tagging.scan as scan_module

    path = audiofactory.write(tmp_path / "a.flac", metal_like())
    real_analyse_many = predicting_module.analyse_many

    def analyse_then_edit(*args, **kwargs):
        for analysed in real_analyse_many(*args, **kwargs):
            write_genres(path, ["Jazz"])  # someone tags it while we were busy
            yield analysed

    monkeypatch.setattr(predicting_module, "analyse_many", analyse_then_edit)
    report, journal = tmp_path / "r.csv", tmp_path / "j.jsonl"
    result = run("scan", path, "--models-dir", tiny_models, "--model", "knn", "--write", "--journal", journal, "--report", report)
    assert result.exit_code == 1
    row = read_csv(report)[0]
    assert row.status == "failed" and row.error == f"{path}: file changed while it was being analysed; scan it again"
    assert read_genres(path) == ["Jazz"]

    # The same race on a result read from the cache: the stamp it was analysed with no
    # longer matches when the tag is about to be written.
    monkeypatch.setattr(predicting_module, "analyse_many", real_analyse_many)
    assert run("scan", path, "--models-dir", tiny_models, "--model", "knn", "--report", report).exit_code == 0  # caches the result
    real_tag_file = scan_module.tag_file

    def edit_then_tag(journal, target, *args, **kwargs):
        write_genres(target, ["Blues"])
        return real_tag_file(journal, target, *args, **kwargs)

    monkeypatch.setattr(scan_module, "tag_file", edit_then_tag)
    result = run("scan", path, "--models-dir", tiny_models, "--model", "knn", "--write", "--policy", "overwrite", "--journal", journal,
                 "--report", report)
    assert "1 from cache" in result.output
    row = read_csv(report)[0]
    assert row.status == "failed" and row.error == f"{path}: file changed since it was analysed"
    assert read_genres(path) == ["Blues"]


# --------------------------------------------------------------------------- a 2-hour file

RSS_SCRIPT = r"""
import json, resource, sys
from pathlib import Path
from genre_tagger.models import bundle, catalogue
from genre_tagger.pipeline.cache import Cache
from genre_tagger.plugins import registry
from genre_tagger.tagging.scan import ScanOptions, Scanner
model_dir, short, long = sys.argv[1:]
scanner = Scanner(bundle.load(Path(model_dir), registry()), ScanOptions(), Cache(None))
scanner.scan([Path(short)])  # imports, JIT compilation and model warm-up happen here
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
summary = scanner.scan([Path(long)])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mib": (after - before) / 1024, "row": summary.results[0].as_row()}))
"""


def write_long_wav(path: Path, hours: float, rate: int = 8000) -> Path:
    """An 8-bit mono WAV of ``hours``, one minute of noise and clicks repeated (written in chunks)."""
    minute = metal_like(60, rate)
    pattern = np.round(minute * 127 + 128).clip(0, 255).astype(np.uint8).tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        for _ in range(int(hours * 60)):
            out.writeframesraw(pattern)
    return path


def test_two_hour_file_scans_in_bounded_memory(tmp_path, tiny_models):
    long = write_long_wav(tmp_path / "long.wav", hours=2)  # 58 MB on disk, 635 MB decoded to float32
    short = audiofactory.write(tmp_path / "short.wav", metal_like())
    try:
        done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(tiny_models / "knn"), str(short), str(long)],
                              capture_output=True, text=True, timeout=540)
    finally:
        long.unlink()
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    row = measured["row"]
    assert row["status"] == "would tag" and row["genre"] == "Metal"
    assert row["duration_s"] == pytest.approx(7200, abs=1) and row["segments"] == DEFAULT_MAX_SEGMENTS
    # Decoding the whole file at once would need > 635 MB; blocks of 96 s need ~10 MB.
    assert measured["growth_mib"] < 300, measured


# --------------------------------------------------------------------------- the cache


@pytest.fixture
def small_library(tmp_path) -> Path:
    root = tmp_path / "Music"
    root.mkdir()
    for i in range(6):
        audiofactory.write(root / f"track{i}.wav", metal_like(seed=i))
    return root


def scan_process(library_root: Path, tiny_models: Path, cache: Path, report: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "scan", str(library_root), "--models-dir", str(tiny_models), "--model", "knn", "--cache", str(cache),
         "--report", str(report), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_two_scans_share_one_cache(small_library, tiny_models, tmp_path):
    cache = tmp_path / "shared.sqlite"  # created by whichever starts first
    reports = [tmp_path / "one.csv", tmp_path / "two.csv"]
    processes = [scan_process(small_library, tiny_models, cache, report) for report in reports]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output
    one, two = (read_csv(report) for report in reports)
    assert one == two
    assert len(one) == 6 and all(r.status == "would tag" and r.genre == "Metal" for r in one)
    again = run("scan", small_library, "--models-dir", tiny_models, "--model", "knn", "--cache", cache)
    assert again.exit_code == 0 and "6 from cache, 0 analysed" in again.output


def test_cache_keeps_non_utf8_paths_apart(tmp_path):
    odd, text = os.fsdecode(b"/music/caf\xe9.mp3"), "/music/caf\xe9.mp3"  # Latin-1 and UTF-8 names: two files
    with Cache(tmp_path / "c.sqlite") as cache:
        cache.put_result((odd, 1, 2), "m", "s", {"genre": "jazz"})
        cache.put_features((odd, 1, 2), "x", "all", np.ones((2, 3)))
        assert cache.get_result((odd, 1, 2), "m", "s") == {"genre": "jazz"}
        assert cache.get_features((odd, 1, 2), "x", "all").shape == (2, 3)
        assert cache.get_result((text, 1, 2), "m", "s") is None
        assert cache.get_result((odd, 1, 3), "m", "s") is None


def test_one_file_has_one_cache_key_however_its_folder_is_spelled(tmp_path, monkeypatch):
    (tmp_path / "music").mkdir()
    (tmp_path / "music" / "a.mp3").write_bytes(b"x")
    monkeypatch.chdir(tmp_path / "music")
    spellings = ["a.mp3", "../music/a.mp3", tmp_path / "music" / "." / "a.mp3"]
    keys = {cache_module.file_key(p) for p in spellings}
    assert keys == {(str(tmp_path / "music" / "a.mp3"), 1, (tmp_path / "music" / "a.mp3").stat().st_mtime_ns)}


def committed_results(cache: Path) -> int:
    if not cache.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_killed_scan_leaves_a_usable_cache(small_library, tiny_models, tmp_path):
    cache = tmp_path / "cache.sqlite"
    process = scan_process(small_library, tiny_models, cache, tmp_path / "killed.csv")
    deadline = time.monotonic() + 300
    while committed_results(cache) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    output = process.communicate()[0]
    assert process.returncode == -signal.SIGKILL, output  # killed mid-scan, not finished
    committed = committed_results(cache)
    assert 2 <= committed < 6
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    report = tmp_path / "r.csv"
    result = run("scan", small_library, "--models-dir", tiny_models, "--model", "knn", "--cache", cache, "--report", report)
    assert result.exit_code == 0, result.output
    assert f"{committed} from cache, {6 - committed} analysed" in result.output
    rows = read_csv(report)
    assert len(rows) == 6 and all(r.status == "would tag" and r.genre == "Metal" for r in rows)


# --------------------------------------------------------------------------- damaged bundles


def _tamper(models: Path) -> str:
    data = bytearray((models / "knn" / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (models / "knn" / "arrays.npz").write_bytes(bytes(data))
    return "checksum mismatch, the bundle is damaged or was modified"


def _truncate_arrays(models: Path) -> str:
    arrays = models / "knn" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:100])
    return "checksum mismatch"


def _truncate_metadata(models: Path) -> str:
    meta = models / "knn" / "bundle.json"
    meta.write_bytes(meta.read_bytes()[:200])
    return "unreadable bundle metadata"


class _Payload:
    """Unpickling this runs ``os.mkdir(marker)``: proof that something in a bundle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _npz_with_payload(marker: Path) -> bytes:
    import io
    import zipfile

    array = io.BytesIO()
    np.save(array, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as archive:
        archive.writestr("classes_.npy", array.getvalue())
    return npz.getvalue()


def _pickle_payload(models: Path) -> str:
    """arrays.npz replaced by one holding a pickle payload, its checksum made to match."""
    import io

    probe = models.parent / "probe"  # the payload is live: loading it with pickle allowed runs it
    with np.load(io.BytesIO(_npz_with_payload(probe)), allow_pickle=True) as npz:
        npz["classes_"]
    assert probe.is_dir()
    data = _npz_with_payload(models / "EXECUTED")
    (models / "knn" / "arrays.npz").write_bytes(data)
    meta_path = models / "knn" / "bundle.json"
    meta = json.loads(meta_path.read_text())
    meta["files"]["arrays.npz"] = hashlib.sha256(data).hexdigest()
    meta_path.write_text(json.dumps(meta))
    return "unreadable arrays"


@pytest.mark.parametrize("damage", [_tamper, _truncate_arrays, _truncate_metadata, _pickle_payload])
def test_damaged_bundle_is_refused_by_the_cli(damage, tiny_models, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    words = damage(models)
    track = audiofactory.write(tmp_path / "a.wav", metal_like())
    done = run("scan", track, "--models-dir", models, "--model", "knn")
    assert done.exit_code == 2, done.output
    assert done.stdout == "" and "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())  # rich wraps long lines at the console width
    assert message.startswith("error: ") and message.count("error:") == 1, done.stderr
    assert words in message and str(models / "knn") in message
    assert not (models / "EXECUTED").exists()
    assert read_genres(track) == []


# --------------------------------------------------------------------------- report round trips

# Text as a user's tags and messages hold it: anything but NUL and lone surrogates, with
# the characters CSV must quote made common.
_TEXT = st.text(st.one_of(st.sampled_from(',"\'\n\r\t ;'), st.characters(exclude_categories=["Cs"], exclude_characters="\0")))
# A POSIX file name is bytes (any but NUL); Python holds one that is not UTF-8 as a str
# with surrogate escapes. Build names from text and raw bytes, decoded as os.fsdecode does.
_NAME_BYTES = st.lists(st.one_of(_TEXT.map(str.encode), st.binary()), max_size=4).map(lambda parts: b"".join(parts))
_PATHS = _NAME_BYTES.map(lambda raw: os.fsdecode(raw.replace(b"\0", b"")))
_NUMBERS = st.none() | st.floats(allow_nan=False, allow_infinity=False)

_RESULTS = st.builds(
    TrackResult,
    path=_PATHS,
    genre=_TEXT,
    confidence=_NUMBERS,
    top3=_TEXT,
    segments=st.none() | st.integers(min_value=0, max_value=10**9),
    model=_TEXT,
    duration_s=_NUMBERS,
    status=_TEXT,
    error=st.one_of(_TEXT, _PATHS),
)


@settings(deadline=None, max_examples=150)
@given(st.lists(_RESULTS, max_size=5))
def test_report_csv_round_trips_any_path_and_text(results):
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.csv"
        write_csv(results, report)
        assert read_csv(report) == results
        assert [p.name for p in Path(folder).iterdir()] == ["report.csv"]  # no temporary left


def test_report_keeps_the_raw_bytes_of_a_name(tmp_path):
    name = os.fsdecode(b"/music/caf\xe9, \"live\"\n\xff.mp3")
    write_csv([TrackResult(name, status="failed", error=f"{name}: empty file")], tmp_path / "r.csv")
    assert b"caf\xe9, \"\"live\"\"\n\xff.mp3" in (tmp_path / "r.csv").read_bytes()
    assert read_csv(tmp_path / "r.csv")[0].path == name


# --------------------------------------------------------------------------- worker crashes


class KillsItsWorker(os.PathLike):
    """A "file" whose arrival in a worker process kills it, as a crashing decoder would."""

    def __init__(self, name: str):
        self.name = name

    def __fspath__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name

    def __reduce__(self):
        return (os._exit, (70,))  # run by the worker when it unpickles its task


def test_a_crashing_worker_costs_one_file_not_the_scan(tmp_path):
    from genre_tagger.pipeline.dispatch import analyse_many

    files = [tmp_path / f"{name}.mp3" for name in "abcde"]
    for path in files:
        path.write_bytes(b"")  # analysed (and refused) in a blink: what matters is that each comes back
    crash = KillsItsWorker(str(tmp_path / "crash.mp3"))
    results = {str(r.path): r.error for r in analyse_many([files[0], crash, *files[1:]], ["gtzan57"], 20, jobs=2)}
    assert results == {
        **{str(path): f"{path}: empty file" for path in files},
        str(crash): f"{crash}: the analysis process crashed on this file",
    }


def test_damaged_cache_database_is_a_one_line_error(tmp_path, tiny_models):
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"this is not an SQLite database" * 100)
    path = audiofactory.write(tmp_path / "a.wav", metal_like())
    result = run("scan", path, "--models-dir", tiny_models, "--cache", cache)
    assert result.exit_code == 2
    assert f"{cache}: cannot use this cache database" in result.output
    assert "--no-cache" in result.output and "Traceback" not in result.output
    assert run("scan", path, "--models-dir", tiny_models, "--no-cache").exit_code == 0


def test_a_file_reached_twice_is_scanned_once(tmp_path, tiny_models):
    folder = tmp_path / "Music"
    folder.mkdir()
    path = audiofactory.write(folder / "a.wav", metal_like())
    (folder / "link.wav").symlink_to(path)
    report = tmp_path / "r.csv"
    result = run("scan", path, folder, "--models-dir", tiny_models, "--report", report)
    assert result.exit_code == 0, result.output
    assert [Path(row.path).name for row in read_csv(report)] == ["a.wav"]
