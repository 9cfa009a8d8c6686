"""`genre-tagger scan` end to end, on files the tests make, with models retrained on generated audio."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner, Result

import audiofactory
from genre_tagger.cli import main
from genre_tagger.tagging.report import COLUMNS, read_csv
from genre_tagger.tagging.tags import read_genres, write_genres

FORMATS = ["mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff"]


def run(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([frame.to_ndarray().ravel() for frame in container.decode(audio=0)])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def library(tmp_path) -> Path:
    """One 'metal'-like file (noise and clicks) per format, in nested folders, plus clutter."""
    root = tmp_path / "Music"
    for i, ext in enumerate(FORMATS):
        signal = (audiofactory.noise(7, seed=i, amplitude=0.3) + audiofactory.clicks(7, bpm=150)).clip(-1, 1)
        folder = root / f"Artist {i % 3}" / "Album"
        folder.mkdir(parents=True, exist_ok=True)
        audiofactory.write(folder / f"track{i}.{ext.upper() if i % 2 else ext}", signal)
    (root / "cover.jpg").write_bytes(b"not audio")
    (root / ".hidden").mkdir()
    audiofactory.write(root / ".hidden" / "secret.wav", audiofactory.tone(4))
    return root


def test_dry_run_reports_every_format_and_changes_nothing(library, tiny_models, tmp_path):
    before = {p: digest(p) for p in library.rglob("*") if p.is_file()}
    report = tmp_path / "report.csv"
    result = run("scan", library, "--models-dir", tiny_models, "--report", report)
    assert result.exit_code == 0, result.output
    assert {p: digest(p) for p in library.rglob("*") if p.is_file()} == before
    with open(report, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        rows = list(reader)
    assert len(rows) == len(FORMATS)  # hidden folder and cover.jpg skipped
    for row in rows:
        assert row["status"] == "would tag", row
        assert (row["genre"], row["class"]) == ("Metal", "metal")
        assert 0.5 <= float(row["confidence"]) <= 1
        assert row["top3"].startswith("metal:")
        assert int(row["segments"]) == 2 and float(row["duration_s"]) == pytest.approx(7, abs=0.2)
        assert row["model"] in ("knn", "lightgbm", "ensemble") and row["error"] == ""
    assert "Dry run" in result.output


def test_write_tags_every_format_keeping_audio_and_other_tags(library, tiny_models, tmp_path):
    files = sorted(p for p in library.rglob("*") if p.suffix.lower().lstrip(".") in FORMATS and ".hidden" not in p.parts)
    audio_before = {p: decoded(p) for p in files}
    journal = tmp_path / "journal.jsonl"
    result = run("scan", library, "--models-dir", tiny_models, "--write", "--journal", journal)
    assert result.exit_code == 0, result.output
    for path in files:
        assert read_genres(path) == ["Metal"], path
        np.testing.assert_array_equal(decoded(path), audio_before[path])
    # undo is a dry run without --write, then restores "no genre"
    assert run("undo", journal).exit_code == 0
    assert read_genres(files[0]) == ["Metal"]
    assert run("undo", journal, "--write").exit_code == 0
    for path in files:
        assert read_genres(path) == [], path


@pytest.mark.parametrize(
    "policy, existing, expected",
    [("keep", ["Jazz"], ["Jazz"]), ("overwrite", ["Jazz"], ["Metal"]), ("append", ["Jazz"], ["Jazz", "Metal"])],
)
def test_existing_genre_policies(policy, existing, expected, tmp_path, tiny_models):
    path = audiofactory.write(tmp_path / "a.flac", (audiofactory.noise(7, amplitude=0.3) + audiofactory.clicks(7)).clip(-1, 1))
    write_genres(path, existing)
    result = run("scan", path, "--models-dir", tiny_models, "--write", "--policy", policy, "--journal", tmp_path / "j")
    assert result.exit_code == 0, result.output
    assert read_genres(path) == expected


def test_genre_names_and_id3v23(tmp_path, tiny_models):
    from mutagen.id3 import ID3

    path = audiofactory.write(tmp_path / "a.mp3", (audiofactory.noise(7, amplitude=0.3) + audiofactory.clicks(7)).clip(-1, 1))
    ID3(path).delete()  # --id3v23 applies to files without an ID3 tag; existing tags keep their version
    result = run("scan", path, "--models-dir", tiny_models, "--write", "--id3v23", "--genre-name", "metal=Heavy Metal",
                 "--journal", tmp_path / "j")
    assert result.exit_code == 0, result.output
    assert read_genres(path) == ["Heavy Metal"]
    assert ID3(path).version[:2] == (2, 3)


def test_min_confidence_reports_unknown_and_does_not_tag(tmp_path, tiny_models):
    path = audiofactory.write(tmp_path / "a.wav", audiofactory.music_like(7))
    report = tmp_path / "r.csv"
    result = run("scan", path, "--models-dir", tiny_models, "--write", "--min-confidence", "1.01", "--report", report)
    assert result.exit_code == 2  # out of range is a usage error
    result = run("scan", path, "--models-dir", tiny_models, "--write", "--min-confidence", "1", "--report", report,
                 "--journal", tmp_path / "j")
    rows = read_csv(report)
    if rows[0].confidence < 1:
        assert rows[0].genre == "unknown" and rows[0].status == "uncertain"
        assert read_genres(path) == []


def test_failures_are_reported_and_the_scan_goes_on(library, tiny_models, tmp_path):
    (library / "broken.mp3").write_bytes(b"\x00garbage" * 100)
    (library / "short.wav").unlink(missing_ok=True)
    audiofactory.write(library / "short.wav", audiofactory.tone(1.0))
    report = tmp_path / "r.csv"
    result = run("scan", library, "--models-dir", tiny_models, "--report", report)
    assert result.exit_code == 1
    rows = {Path(r.path).name: r for r in read_csv(report)}
    assert rows["broken.mp3"].status == "failed" and "broken.mp3" in rows["broken.mp3"].error
    assert rows["short.wav"].status == "failed" and "shorter than one" in rows["short.wav"].error
    assert "\n" not in rows["broken.mp3"].error
    assert sum(r.status == "would tag" for r in rows.values()) == len(FORMATS)


def test_resume_uses_the_cache(library, tiny_models, tmp_path):
    cache = tmp_path / "cache.sqlite"
    first_folder = next(p for p in library.iterdir() if p.is_dir() and not p.name.startswith("."))
    first = run("scan", first_folder, "--models-dir", tiny_models, "--cache", cache)  # an "interrupted" scan
    assert first.exit_code == 0
    done = len(list(p for p in first_folder.rglob("*") if p.is_file()))
    second = run("scan", library, "--models-dir", tiny_models, "--cache", cache)
    assert f"{done} from cache," in second.output
    third = run("scan", library, "--models-dir", tiny_models, "--cache", cache)
    assert f"{len(FORMATS)} from cache," in third.output
    # after tagging, the next scan still needs no analysis: only tags changed
    run("scan", library, "--models-dir", tiny_models, "--cache", cache, "--write", "--journal", tmp_path / "j")
    fourth = run("scan", library, "--models-dir", tiny_models, "--cache", cache)
    assert f"{len(FORMATS)} from cache," in fourth.output


def test_a_cached_dry_run_reads_each_files_genres_once(library, tiny_models, tmp_path, monkeypatch):
    """A dry run plans each file's tag from the genres it read for the report; a write
    reads them again next to the write, for the journal."""
    from genre_tagger.tagging import journal, scan

    cache = tmp_path / "cache.sqlite"
    run("scan", library, "--models-dir", tiny_models, "--cache", cache)
    reads = []
    for module in (scan, journal):
        monkeypatch.setattr(module, "read_genres", lambda path, read=read_genres: (reads.append(path), read(path))[1])
    assert run("scan", library, "--models-dir", tiny_models, "--cache", cache).exit_code == 0
    assert len(reads) == len(FORMATS) == len(set(reads))
    reads.clear()
    assert run("scan", library, "--models-dir", tiny_models, "--cache", cache, "--write",
               "--journal", tmp_path / "j").exit_code == 0
    assert len(reads) == 2 * len(FORMATS)


def test_jobs_give_the_same_report(library, tiny_models, tmp_path):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert run("scan", library, "--models-dir", tiny_models, "--no-cache", "--report", one).exit_code == 0
    assert run("scan", library, "--models-dir", tiny_models, "--no-cache", "--jobs", "2", "--report", two).exit_code == 0
    assert read_csv(one) == read_csv(two)


def test_max_segments_spreads_over_long_tracks(tmp_path, tiny_models):
    path = audiofactory.write(tmp_path / "long.flac", (audiofactory.noise(31, amplitude=0.3) + audiofactory.clicks(31)).clip(-1, 1))
    report = tmp_path / "r.csv"
    run("scan", path, "--models-dir", tiny_models, "--max-segments", "4", "--report", report)
    assert read_csv(report)[0].segments == 4
    run("scan", path, "--models-dir", tiny_models, "--max-segments", "0", "--report", report)
    assert read_csv(report)[0].segments == 10


def test_usage_errors_exit_2(tmp_path, tiny_models):
    assert run("scan", tmp_path, "--models-dir", tiny_models, "--policy", "merge").exit_code == 2
    assert run("scan", tmp_path, "--models-dir", tiny_models, "--model", "nope").exit_code == 2
    assert run("scan", "--models-dir", tiny_models).exit_code == 2


def test_report_round_trip(library, tiny_models, tmp_path):
    report = tmp_path / "r.csv"
    run("scan", library, "--models-dir", tiny_models, "--report", report)
    from genre_tagger.tagging.report import write_csv

    again = tmp_path / "again.csv"
    write_csv(read_csv(report), again)
    assert again.read_text() == report.read_text()


def test_soft_vote_uses_the_mean_probability(library, tiny_models, tmp_path):
    cache = tmp_path / "cache.sqlite"
    majority, soft = tmp_path / "majority.csv", tmp_path / "soft.csv"
    assert run("scan", library, "--models-dir", tiny_models, "--cache", cache, "--report", majority).exit_code == 0
    result = run("scan", library, "--models-dir", tiny_models, "--cache", cache, "--report", soft, "--vote", "soft")
    assert result.exit_code == 0, result.output
    assert f"{len(FORMATS)} from cache," in result.output  # the same cached prediction, decided another way
    for a, b in zip(read_csv(majority), read_csv(soft)):
        assert b.genre == "Metal" and b.status == "would tag"
        assert 0 < b.confidence <= 1 and b.top3.startswith("metal:")
