"""The Picard plugin (``genre_tagger_picard/``) in a real MusicBrainz Picard 3.

The first tests need no Picard: the build command's folder and zip, the plugin's own
reading of ``scan --json`` lines and versions, and its policy rule against scan's own
(:func:`genre_tagger.tagging.tags.plan_genres`).

The others start a real Picard (``pip install 'genre-tagger[picard]'``) in a process of
its own, with ``QT_QPA_PLATFORM=offscreen``, through ``tests/picard_session.py``: the
plugin folder that ``python -m genre_tagger_picard`` builds is installed and enabled by
Picard's own plugin manager (as Options > Plugins > Install Plugin... > Local does), its
options are set on its options page, real GTZAN clips are loaded with
``tagger.add_files`` and the action is triggered on them; Picard's metadata, log and
status bar are read back. They skip, saying so, where Picard is not installed, unless
``GENRE_TAGGER_REQUIRE_PICARD=1`` or ``GENRE_TAGGER_REQUIRE_DATA=1`` (CI, whose
``.ci/run`` installs ``.[test,picard]``), which make that a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import audiofactory

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("genre_tagger_picard") is None:  # an environment installed before the plugin existed
    sys.path.insert(0, str(HERE.parent))
from genre_tagger_picard import command  # noqa: E402
from genre_tagger_picard.__main__ import PLUGIN_FILES, PLUGIN_ID, build  # noqa: E402

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

SESSION = HERE / "picard_session.py"
BIN = Path(sys.executable).parent  # genre-tagger of this environment
#: CI (GENRE_TAGGER_REQUIRE_DATA=1, and .ci/run installs the picard extra) runs them: never a skip there
REQUIRE_PICARD = "1" in (os.environ.get("GENRE_TAGGER_REQUIRE_PICARD"), os.environ.get("GENRE_TAGGER_REQUIRE_DATA"))
#: clips of several genres: their confidences spread, so that a threshold between them
#: leaves one uncertain whichever model is the default
CLIPS = ["classical/classical.00000.ogg", "metal/metal.00001.ogg", "jazz/jazz.00002.ogg",
         "pop/pop.00003.ogg", "reggae/reggae.00004.ogg", "rock/rock.00005.ogg"]


def picard_missing() -> str | None:
    for module in ("picard", "PyQt6"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install 'genre-tagger[picard]' (Picard 3, PyQt6)"
    return None


def need_picard() -> None:
    reason = picard_missing()
    if reason:
        if REQUIRE_PICARD:
            pytest.fail(reason + ", and GENRE_TAGGER_REQUIRE_PICARD=1 or GENRE_TAGGER_REQUIRE_DATA=1 (CI) requires it")
        pytest.skip(reason)


# ------------------------------------------------------------------ without Picard


def test_build_writes_the_plugin_folder_and_zip(tmp_path):
    folder = build(tmp_path / "out", make_zip=True)
    assert folder == tmp_path / "out" / PLUGIN_ID
    assert sorted(p.name for p in folder.iterdir()) == sorted(PLUGIN_FILES)
    manifest = tomllib.loads((folder / "MANIFEST.toml").read_text())
    assert {"uuid", "name", "description", "api"} <= set(manifest) and "3.0" in manifest["api"]
    assert len(manifest["description"]) <= 200
    with zipfile.ZipFile(tmp_path / "out" / f"{PLUGIN_ID}.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"{PLUGIN_ID}/{name}" for name in PLUGIN_FILES)
    build(tmp_path / "out")  # a rebuild replaces the old one
    (tmp_path / "other" / PLUGIN_ID).mkdir(parents=True)
    with pytest.raises(SystemExit, match="not a build of the plugin"):
        build(tmp_path / "other")


def test_build_command_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "genre_tagger_picard", "--out", str(tmp_path)],
                          capture_output=True, text=True, check=True, cwd=HERE.parent)
    assert (tmp_path / PLUGIN_ID / "MANIFEST.toml").is_file()
    assert "Install Plugin... > Local" in done.stdout and str(tmp_path / PLUGIN_ID) in done.stdout


@pytest.mark.parametrize("existing,new", [
    ([], ["Jazz"]), (["Rock"], ["Jazz"]), (["Jazz"], ["Jazz"]), (["jazz"], ["Jazz", "Blues"]),
    (["Rock; Jazz"], ["Jazz"]), (["Rock", "Pop"], ["Pop", "Rock"]), ([], ["Jazz", "jazz"]),
])
@pytest.mark.parametrize("policy", ["keep", "overwrite", "append"])
def test_the_policy_is_scans(existing, new, policy):
    from genre_tagger.tagging.tags import plan_genres

    assert command.plan_genres(existing, new, policy) == plan_genres(existing, new, policy)


def test_versions_and_lines_are_read():
    assert command.parse_version("genre-tagger, version 0.1.0\n") == (0, 1, 0)
    assert command.parse_version("beet version 2.1") is None
    line = {"path": "/m/a.ogg", "status": "uncertain", "genres": [], "confidence": 0.41, "genre": "unknown",
            "error": "/m/a.ogg: jazz only 41% likely, below the threshold: not tagged"}
    outcome = command.outcome_of(line)
    assert (outcome.status, outcome.note) == ("uncertain", "jazz only 41% likely, below the threshold: not tagged")
    assert command.outcome_of({**line, "reason": "below threshold"}).note.endswith("(below threshold)")
    tagged = command.outcome_of({**line, "status": "would tag", "genres": ["Jazz", "Blues"], "error": ""})
    assert (tagged.status, tagged.genres) == ("tagged", ["Jazz", "Blues"])
    with pytest.raises(command.CommandError, match="too old"):
        command.outcome_of({"path": "/m/a.ogg", "status": "would tag", "genre": "Jazz"})


def test_a_missing_command_is_said(tmp_path):
    with pytest.raises(command.CommandError, match="not found on PATH"):
        command.find_command("", which=lambda name: None)
    with pytest.raises(command.CommandError, match="not found at"):
        command.find_command(str(tmp_path / "genre-tagger"))
    assert command.find_command(str(BIN / "genre-tagger")) == str(BIN / "genre-tagger")


def test_too_old_and_not_genre_tagger_are_said(tmp_path):
    old = fake_command(tmp_path / "old", "genre-tagger, version 0.0.9")
    with pytest.raises(command.CommandError, match="genre-tagger 0.0.9, too old: this plugin needs 0.1.0"):
        command.check_version(str(old))
    other = fake_command(tmp_path / "other", "something else 1.0")
    with pytest.raises(command.CommandError, match="is not genre-tagger"):
        command.check_version(str(other))
    from genre_tagger import __version__

    assert command.check_version(str(BIN / "genre-tagger")) == __version__


def fake_command(folder: Path, says: str) -> Path:
    """A ``genre-tagger`` on ``folder`` that prints ``says`` for any arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "genre-tagger"
    path.write_text(f"#!/bin/sh\necho '{says}'\n")
    path.chmod(0o755)
    return path


# ------------------------------------------------------------------ in a real Picard


def user_dirs(tmp_path: Path) -> dict[str, str]:
    """genre-tagger's cache, journals and configuration in ``tmp_path``, never the user's
    (conftest's autouse fixture does it for each test; a module's fixture runs before it)."""
    return {"GENRE_TAGGER_CACHE": str(tmp_path / "cache.sqlite"), "XDG_DATA_HOME": str(tmp_path / "data"),
            "GENRE_TAGGER_CONFIG": str(tmp_path / "config.toml")}


def run_picard(tmp_path: Path, spec: dict, path_env: str, timeout: float = 600) -> dict:
    """One Picard session (see tests/picard_session.py): what Picard held after the run."""
    spec.setdefault("plugin", str(build(tmp_path / "plugin-build")))
    spec_path, result_path = tmp_path / "spec.json", tmp_path / "result.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, **user_dirs(tmp_path), "PATH": path_env, "HOME": str(tmp_path / "home"),
           "QT_QPA_PLATFORM": "offscreen"}
    env.pop("GENRE_TAGGER_MODELS", None)
    (tmp_path / "home").mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, str(SESSION), str(spec_path), str(result_path)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert result_path.is_file(), f"Picard wrote no result (exit {done.returncode}):\n{done.stderr[-4000:]}"
    result = json.loads(result_path.read_text())
    assert "error" not in result, result["error"]
    return result


def scan_json(tmp_path: Path, paths: list[Path], *options: str) -> dict[str, dict]:
    """``genre-tagger scan --json -`` run directly, by path (it also fills the cache that
    the Picard session in ``tmp_path`` uses)."""
    env = {**os.environ, **user_dirs(tmp_path)}
    env.pop("GENRE_TAGGER_MODELS", None)
    done = subprocess.run([str(BIN / "genre-tagger"), "scan", "--json", "-", "--policy", "overwrite", *options,
                           "--", *map(str, paths)], capture_output=True, text=True, env=env)
    return {record["path"]: record for record in map(json.loads, done.stdout.splitlines())}


def threshold_between(confidences: list[float]) -> float:
    """A threshold (two decimals, as the options page has it) in the widest gap between
    the confidences: some clips above it, some below."""
    values = sorted(set(confidences))
    gaps = [(b - a, a, b) for a, b in zip(values, values[1:])]
    assert gaps, f"the clips' confidences do not spread: {values}"
    _, low, high = max(gaps)
    threshold = round((low + high) / 2, 2)
    assert low < threshold <= high, (low, threshold, high)
    return threshold


@pytest.fixture(scope="module")
def tagged_session(gtzan_dir, tmp_path_factory):
    """Real clips, a damaged file and a silent one, the action run on them in Picard with a
    threshold that leaves some clip uncertain, up to 2 genres, and one clip already
    holding a genre in Picard (policy keep)."""
    need_picard()
    tmp_path = tmp_path_factory.mktemp("picard").resolve()  # paths as Picard holds them: resolved
    clips = [(gtzan_dir / "genres" / clip).resolve() for clip in CLIPS]
    damaged = tmp_path / "damaged.mp3"  # Picard lists it (with an error); genre-tagger cannot decode it
    damaged.write_bytes(np.random.default_rng(0).bytes(5000))
    silent = audiofactory.write(tmp_path / "silent.wav", np.zeros(22050 * 8, dtype=np.float32))
    plain = {record["path"]: record["confidence"] for record in scan_json(tmp_path, clips).values()}
    threshold = threshold_between(list(plain.values()))
    expected = scan_json(tmp_path, clips, "--min-confidence", str(threshold), "--genres", "2")
    tagged = [path for path, record in expected.items() if record["status"] == "would tag"]
    kept = max(tagged, key=lambda path: expected[path]["confidence"])
    spec = {"files": [*map(str, clips), str(damaged), str(silent)],
            "options": {"min_confidence": threshold, "max_genres": 2, "policy": "keep"},
            "preset": {kept: ["Polka"]}}
    result = run_picard(tmp_path, spec, f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return {"result": result, "expected": expected, "threshold": threshold, "kept": kept, "damaged": str(damaged),
            "silent": str(silent)}


@pytest.mark.data
def test_plugin_loads_through_picards_plugin_manager(tagged_session):
    result = tagged_session["result"]
    assert result["plugin"] == {"id": PLUGIN_ID, "state": "enabled", "name": "genre-tagger"}
    title = "Genre from the audio (genre-tagger)"
    assert all(result["actions"][kind] == [title] for kind in ("file", "track", "album", "cluster"))
    assert result["options_pages"] == ["genre-tagger"]
    assert result["loaded"] and result["finished"]


@pytest.mark.data
def test_genres_and_confidence_set_as_scan_says(tagged_session):
    result, expected = tagged_session["result"], tagged_session["expected"]
    files = result["files"]
    tagged = [path for path, record in expected.items() if record["status"] == "would tag"
              and path != tagged_session["kept"]]
    assert tagged
    for path in tagged:
        assert files[path]["genre"] == expected[path]["genres"], path  # scan's names, scan's choice of up to 2
        assert files[path]["confidence"] == f"{expected[path]['confidence']:.4f}"
        assert files[path]["original_genre"] == [] and files[path]["state"] == "CHANGED"  # Picard's diff, unsaved
    log = "\n".join(result["log"])
    assert f"threshold {tagged_session['threshold']:g}, up to 2 genre(s), policy keep" in log
    for path in tagged:
        assert f"tagged {path}: (none) -> {'; '.join(expected[path]['genres'])}" in log


@pytest.mark.data
def test_uncertain_tracks_untouched_with_the_reason_in_the_log(tagged_session):
    result, expected = tagged_session["result"], tagged_session["expected"]
    uncertain = [path for path, record in expected.items() if record["status"] == "uncertain"]
    assert uncertain, "the threshold left no clip uncertain"
    log = "\n".join(result["log"])
    for path in uncertain + [tagged_session["silent"]]:
        assert result["files"][path]["genre"] == [] and result["files"][path]["confidence"] is None, path
    for path in uncertain:
        assert f"uncertain {path}: " in log and "below the threshold: not tagged" in log
    assert f"uncertain {tagged_session['silent']}: silent" in log


@pytest.mark.data
def test_a_track_with_a_genre_is_kept_by_policy_keep(tagged_session):
    kept = tagged_session["kept"]
    assert tagged_session["result"]["files"][kept]["genre"] == ["Polka"]
    assert tagged_session["result"]["files"][kept]["confidence"] is None
    assert f"kept {kept}: already tagged Polka, kept (policy keep)" in "\n".join(tagged_session["result"]["log"])


@pytest.mark.data
def test_a_damaged_file_is_reported_and_the_others_tagged(tagged_session):
    result, expected = tagged_session["result"], tagged_session["expected"]
    log = "\n".join(result["log"])
    assert f"failed {tagged_session['damaged']}: not an audio file, or damaged" in log
    assert result["files"][tagged_session["damaged"]]["genre"] == []
    n_tagged = sum(record["status"] == "would tag" for record in expected.values()) - 1  # less the kept one
    n_uncertain = sum(record["status"] == "uncertain" for record in expected.values()) + 1  # and the silent one
    summary = f"genre-tagger: {n_tagged} tagged, 1 kept, {n_uncertain} uncertain, 1 failed (each said in the log)"
    assert result["statusbar"] == summary and summary in log
    assert result["status"][0] == f"genre-tagger: listening to {len(CLIPS) + 2} files…"


@pytest.mark.data
def test_a_missing_command_is_reported_in_log_and_status_bar(gtzan_dir, tmp_path):
    need_picard()
    clip = str((gtzan_dir / "genres" / CLIPS[0]).resolve())
    result = run_picard(tmp_path, {"files": [clip], "select": "cluster"}, "/usr/bin:/bin")
    message = "genre-tagger: genre-tagger not found on PATH: install it"
    assert result["statusbar"].startswith(message)
    assert any(message in line and line.startswith("E:") for line in result["log"])
    assert result["files"][clip]["genre"] == [] and result["finished"]


@pytest.mark.data
def test_a_too_old_command_is_reported(gtzan_dir, tmp_path):
    need_picard()
    clip = str((gtzan_dir / "genres" / CLIPS[0]).resolve())
    old = fake_command(tmp_path / "old-bin", "genre-tagger, version 0.0.9")
    result = run_picard(tmp_path, {"files": [clip], "options": {"command": str(old)}}, "/usr/bin:/bin")
    assert "genre-tagger 0.0.9, too old: this plugin needs 0.1.0 or later" in result["statusbar"]
    assert result["files"][clip]["genre"] == []
