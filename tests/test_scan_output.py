"""What a user reads and controls of a scan (#24): the dry run's lines, the report's and
the JSON Lines' columns, exit codes, the configuration file, several genres per track."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import mutagen
import mutagen.id3
import numpy as np
import pytest
from click.testing import CliRunner, Result

import audiofactory
from genre_tagger.cli import main
from genre_tagger.tagging.tags import read_genres, write_genres


def run(*args, env: dict | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)


def metal_like(seconds: float = 7.0, seed: int = 0) -> np.ndarray:
    return (audiofactory.noise(seconds, seed=seed, amplitude=0.3) + audiofactory.clicks(seconds, bpm=150)).clip(-1, 1)


def calm(seconds: float = 7.0) -> np.ndarray:
    return audiofactory.tone(seconds, freq=262) + audiofactory.tone(seconds, freq=392, amplitude=0.1)


@pytest.fixture
def library(tmp_path) -> Path:
    """An untagged and a tagged metal-like file, a tagged calm one (non-ASCII folder), a
    silent file and a broken one."""
    root = tmp_path / "Music"
    files = {"A/01 untagged.flac": metal_like(), "A/02 tagged.mp3": metal_like(seed=2),
             "Ünïcødé/03 calm.m4a": calm(), "B/04 silence.wav": np.zeros(7 * 22050, np.float32)}
    for name, signal in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        audiofactory.write(root / name, signal)
    write_genres(root / "A/02 tagged.mp3", ["Rock"])
    write_genres(root / "Ünïcødé/03 calm.m4a", ["Jazz"])
    (root / "B/05 broken.mp3").write_bytes(b"ID3 not audio" * 50)
    return root


def digests(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def by_name(objects) -> dict[str, dict]:
    return {Path(o["path"]).name: o for o in objects}


def test_dry_run_report_and_json_lines(library, tiny_models, tmp_path):
    before = digests(library)
    report = tmp_path / "report.csv"
    result = run("scan", library, "--models-dir", tiny_models, "--model", "knn", "--report", report, "--json", "-",
                 "--cache", tmp_path / "c.sqlite")
    assert result.exit_code == 1, result.output  # the broken file
    assert digests(library) == before  # a dry run
    # standard output holds only the JSON Lines, one object per file, as each finished
    lines = result.stdout.splitlines()
    objects = by_name(json.loads(line) for line in lines)
    assert len(lines) == 5 and set(objects) == {"01 untagged.flac", "02 tagged.mp3", "03 calm.m4a", "04 silence.wav",
                                                 "05 broken.mp3"}
    untagged, tagged, calm_one = objects["01 untagged.flac"], objects["02 tagged.mp3"], objects["03 calm.m4a"]
    assert (untagged["status"], untagged["genre"], untagged["label"]) == ("would tag", "Metal", "metal")
    assert (untagged["current"], untagged["written"], untagged["genres"]) == ([], ["Metal"], ["Metal"])
    assert (tagged["status"], tagged["current"], tagged["written"], tagged["genres"]) == ("kept", ["Rock"], [], ["Metal"])
    assert "already tagged Rock" in tagged["error"] and "--policy keep" in tagged["error"]
    # (what the tiny models hear in a tone through AAC is theirs to say: the line is what is tested)
    assert (calm_one["status"], calm_one["current"], calm_one["genres"]) == ("kept", ["Jazz"], [calm_one["genre"]])
    assert objects["04 silence.wav"]["status"] == "uncertain" and objects["04 silence.wav"]["genre"] == "unknown"
    assert objects["05 broken.mp3"]["status"] == "failed" and "not an audio file" in objects["05 broken.mp3"]["error"]
    assert 0 < untagged["confidence"] <= 1 and untagged["segments"] == 2 and untagged["duration_s"] == 7.0
    # why each is not tagged, in a word a script can read (#32 item 5)
    assert {name: o["reason"] for name, o in objects.items()} == {
        "01 untagged.flac": "", "02 tagged.mp3": "has-genre", "03 calm.m4a": "has-genre", "04 silence.wav": "silent",
        "05 broken.mp3": "unreadable"}
    # the report says the same, with display names, class ids and the genres now and after
    with report.open(newline="", encoding="utf-8") as handle:
        rows = by_name(csv.DictReader(handle))
    assert (rows["01 untagged.flac"]["genre"], rows["01 untagged.flac"]["class"]) == ("Metal", "metal")
    assert (rows["01 untagged.flac"]["current_genre"], rows["01 untagged.flac"]["genres_written"]) == ("", "Metal")
    assert (rows["02 tagged.mp3"]["current_genre"], rows["02 tagged.mp3"]["genres_written"]) == ("Rock", "")
    assert rows["03 calm.m4a"]["current_genre"] == "Jazz"
    assert {name: row["reason"] for name, row in rows.items()} == {name: o["reason"] for name, o in objects.items()}
    # everything a person reads went to standard error: each change, each file left alone, and why
    said = " ".join(result.stderr.split())
    for text in ("would tag", "01 untagged.flac: (none) -> Metal", "kept", "02 tagged.mp3: already tagged Rock",
                 "the model says Metal", "uncertain", "04 silence.wav: silent", "failed", "05 broken.mp3",
                 "Scan summary"):
        assert text in said, text


def test_lines_to_standard_output_and_failures_outside_the_summary(library, tiny_models, tmp_path):
    result = run("scan", library, "--models-dir", tiny_models, "--model", "knn", "--policy", "overwrite",
                 "--cache", tmp_path / "c.sqlite")
    assert result.exit_code == 1
    out, err = " ".join(result.stdout.split()), " ".join(result.stderr.split())
    assert "02 tagged.mp3: Rock -> Metal" in out and "03 calm.m4a: Jazz -> " in out
    assert "Scan summary" in out and "Dry run: nothing was written" in out
    # the failure is an error line of its own, not a row of the summary table
    assert "05 broken.mp3: not an audio file" in err and "not an audio file" not in out
    assert "1 failed" in err
    quiet = run("scan", library, "--models-dir", tiny_models, "--model", "knn", "--quiet", "--cache", tmp_path / "c.sqlite")
    assert "01 untagged.flac" not in quiet.stdout and "05 broken.mp3" in quiet.stderr  # only the summary, and errors


def test_json_lines_to_a_file(library, tiny_models, tmp_path):
    out = tmp_path / "scan.jsonl"
    result = run("scan", library, "--models-dir", tiny_models, "--model", "knn", "--json", out, "--cache",
                 tmp_path / "c.sqlite")
    assert result.exit_code == 1
    objects = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(objects) == 5 and "Scan summary" in result.stdout
    assert run("scan", library, "--models-dir", tiny_models, "--json", tmp_path / "no" / "x.jsonl").exit_code == 2


def test_exit_codes(library, tiny_models, tmp_path):
    missing = run("scan", tmp_path / "nowhere", "--models-dir", tiny_models)
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no music here")
    empty = run("scan", tmp_path / "empty", "--models-dir", tiny_models)
    assert empty.exit_code == 2 and "no audio files under" in empty.output and ".flac" in empty.output
    good = run("scan", library / "A", "--models-dir", tiny_models, "--cache", tmp_path / "c.sqlite")
    assert good.exit_code == 0, good.output
    some_failed = run("scan", library, "--models-dir", tiny_models, "--cache", tmp_path / "c.sqlite")
    assert some_failed.exit_code == 1


def test_the_configuration_file_sets_defaults_that_options_override(library, tiny_models, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f"""
[scan]
model = "knn"
models-dir = "{tiny_models}"
policy = "overwrite"
cache = "{tmp_path / 'c.sqlite'}"

[genre_names]
metal = "Heavy Metal"
""", encoding="utf-8")
    env = {"GENRE_TAGGER_CONFIG": str(config)}
    result = run("scan", library / "A", env=env)
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "model knn" in out and "02 tagged.mp3: Rock -> Heavy Metal" in out  # policy and genre name from the file
    assert (tmp_path / "c.sqlite").exists()
    overridden = run("scan", library / "A", "--policy", "keep", "--genre-name", "metal=Metal", env=env)
    out = " ".join(overridden.stdout.split())
    assert "02 tagged.mp3: already tagged Rock" in out and "(none) -> Metal" in out  # the options win
    shown = run("config", env=env)
    assert shown.exit_code == 0 and str(config) in " ".join(shown.output.split())
    for text in ("--policy", "overwrite", "--genre-name", "metal=Heavy Metal"):
        assert text in shown.output, text
    config.write_text("[scan]\nwrite = true\n", encoding="utf-8")  # a scan stays a dry run unless asked
    refused = run("scan", library / "A", env=env)
    assert refused.exit_code == 2 and "has no setting 'write'" in " ".join(refused.output.split())


def _genres_by_mutagen(path: Path) -> list[str]:
    """The genre values as mutagen itself reads them, in each format's convention."""
    audio = mutagen.File(path)
    if path.suffix in (".mp3", ".wav", ".aiff"):
        return [value for frame in audio.tags.getall("TCON") for value in frame.text]
    if path.suffix == ".m4a":
        return list(audio.tags["\xa9gen"])
    return list(audio.tags["genre"])


@pytest.mark.parametrize("ext", ["mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff"])
def test_several_genres_are_multi_valued_tags(ext, tiny_models, tmp_path):
    """--genres 2 with a wide margin: the winner and the runner-up, as two values."""
    root = tmp_path / "Music"
    root.mkdir()
    audiofactory.write(root / f"mixed.{ext}", audiofactory.music_like(9, seed=2))
    result = run("scan", root, "--models-dir", tiny_models, "--model", "lightgbm", "--genres", "2", "--genre-margin",
                 "1", "--write", "--journal", tmp_path / "j.jsonl", "--json", tmp_path / "out.jsonl",
                 "--cache", tmp_path / "c.sqlite")
    assert result.exit_code == 0, result.output
    (line,) = tmp_path.joinpath("out.jsonl").read_text().splitlines()
    written = json.loads(line)["written"]
    assert sorted(written) == ["Classical", "Metal"] and json.loads(line)["status"] == "tagged"
    assert _genres_by_mutagen(root / f"mixed.{ext}") == written == read_genres(root / f"mixed.{ext}")


def test_several_genres_in_id3v23_are_joined(tiny_models, tmp_path):
    root = tmp_path / "Music"
    root.mkdir()
    audiofactory.write(root / "mixed.mp3", audiofactory.music_like(9, seed=2))
    mutagen.id3.delete(root / "mixed.mp3")  # FFmpeg's ID3v2.4 tag: an existing tag would keep its version
    result = run("scan", root, "--models-dir", tiny_models, "--model", "lightgbm", "--genres", "2", "--genre-margin",
                 "1", "--id3v23", "--write", "--journal", tmp_path / "j.jsonl", "--cache", tmp_path / "c.sqlite")
    assert result.exit_code == 0, result.output
    tag = mutagen.id3.ID3(root / "mixed.mp3")
    assert tag.version[1] == 3 and len(tag.getall("TCON")[0].text) == 1
    assert sorted(tag.getall("TCON")[0].text[0].split("; ")) == ["Classical", "Metal"]


def test_a_narrow_margin_keeps_one_genre(tiny_models, tmp_path):
    root = tmp_path / "Music"
    root.mkdir()
    audiofactory.write(root / "loud.flac", metal_like())
    out = tmp_path / "out.jsonl"
    run("scan", root, "--models-dir", tiny_models, "--model", "lightgbm", "--genres", "3", "--genre-margin", "0.01",
        "--json", out, "--cache", tmp_path / "c.sqlite")
    assert json.loads(out.read_text())["genres"] == ["Metal"]


def test_undo_last_and_list_find_the_newest_journal_and_keep_the_cache(library, tiny_models, tmp_path, monkeypatch):
    """``undo --list`` names the journals of the default folder, ``undo --last`` replays the
    newest (a dry run without --write), and a scan after the undo is served from the cache."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    cache = tmp_path / "cache.sqlite"
    scan = ["scan", library, "--models-dir", tiny_models, "--cache", cache, "--min-confidence", "0"]
    assert run(*scan, "--write").exit_code == 1  # the broken file
    untagged = library / "A/01 untagged.flac"
    assert read_genres(untagged)
    listed = run("undo", "--list")
    journals = list((tmp_path / "data" / "genre-tagger" / "journals").glob("*.jsonl"))
    assert len(journals) == 1 and journals[0].name in " ".join(listed.output.split())
    dry = run("undo", "--last", "--cache", cache)
    assert dry.exit_code == 0 and "would restore" in dry.output and read_genres(untagged)
    assert run("undo", "--last", "--write", "--cache", cache).exit_code == 0
    assert read_genres(untagged) == [] and read_genres(library / "A/02 tagged.mp3") == ["Rock"]
    again = run(*scan)
    assert "5 files" in again.output and "4 from cache, 1 analysed" in again.output, again.output  # the broken one
    assert run("undo").exit_code == 2  # neither a journal nor --last: a usage error


def test_a_file_holding_its_genre_already_is_unchanged_not_kept_by_policy(library, tiny_models, tmp_path):
    """--policy overwrite on a file that holds the genre it would get: nothing to change,
    said as such (not 'kept (--policy overwrite)'), reason unchanged (#32 item 6)."""
    common = [library / "A", "--models-dir", tiny_models, "--model", "knn", "--policy", "overwrite",
              "--cache", tmp_path / "c.sqlite", "--journal", tmp_path / "j.jsonl"]
    assert run("scan", *common, "--write").exit_code == 0
    again = run("scan", *common, "--json", "-")
    objects = by_name(json.loads(line) for line in again.stdout.splitlines())
    for name, o in objects.items():
        assert (o["status"], o["reason"]) == ("kept", "unchanged"), o
        assert "nothing to change (--policy overwrite)" in o["error"], o["error"]
