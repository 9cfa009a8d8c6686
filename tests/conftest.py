"""Shared fixtures: the GTZAN data beside the project, and small generated audio."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import audiofactory

ROOT = Path(__file__).resolve().parents[1]
GTZAN = Path(os.environ.get("GENRE_TAGGER_DATA", ROOT.parent / "shared" / "data" / "gtzan"))
REQUIRE_DATA = os.environ.get("GENRE_TAGGER_REQUIRE_DATA") == "1"


@pytest.fixture(scope="session")
def gtzan_dir() -> Path:
    """``../shared/data/gtzan``: skipped where absent, a failure when GENRE_TAGGER_REQUIRE_DATA=1."""
    if not (GTZAN / "genres").is_dir():
        message = f"GTZAN data not found at {GTZAN} (clone the project beside ../shared/data/gtzan)"
        if REQUIRE_DATA:
            pytest.fail(message + " and GENRE_TAGGER_REQUIRE_DATA=1 requires it")
        pytest.skip(message)
    return GTZAN


@pytest.fixture
def make_audio(tmp_path):
    """Make a small audio file: ``make_audio("a.flac", seconds=7, kind="music")``."""

    def make(name: str, seconds: float = 7.0, kind: str = "music", sr: int = 22050, **kwargs) -> Path:
        signal = {
            "music": audiofactory.music_like,
            "tone": audiofactory.tone,
            "noise": audiofactory.noise,
            "clicks": audiofactory.clicks,
        }[kind](seconds, sr)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return audiofactory.write(path, signal, sr, **kwargs)

    return make


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Tests never touch the real user's cache or journals."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("GENRE_TAGGER_CACHE", str(home / "cache.sqlite"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("GENRE_TAGGER_CONFIG", str(home / "config.toml"))  # absent: built-in defaults
    monkeypatch.delenv("GENRE_TAGGER_MODELS", raising=False)


def _synthetic_genre_folder(root: Path, clips_per_genre: int = 5, seconds: float = 7.0) -> Path:
    """Two easy 'genres' of generated audio: tones ("classical") and noisy clicks ("metal")."""
    for i in range(clips_per_genre):
        sr = 22050
        calm = audiofactory.tone(seconds, sr, 220 * (1 + i / 4), 0.3) + audiofactory.tone(seconds, sr, 330 * (1 + i / 4), 0.1)
        loud = audiofactory.noise(seconds, sr, 0.3, seed=i) + audiofactory.clicks(seconds, sr, bpm=140 + 10 * i)
        (root / "classical").mkdir(parents=True, exist_ok=True)
        (root / "metal").mkdir(parents=True, exist_ok=True)
        audiofactory.write(root / "classical" / f"classical.{i:05d}.wav", calm, sr)
        audiofactory.write(root / "metal" / f"metal.{i:05d}.wav", loud.clip(-1, 1), sr)
    return root


@pytest.fixture(scope="session")
def assessed_tiny_models(tmp_path_factory) -> Path:
    """KNN and LightGBM bundles retrained (by the real retrain command) on generated audio,
    as retrain wrote them: their assessors know only the two generated genres, so they
    rightly call chords, beats and most other generated sounds not music."""
    from click.testing import CliRunner

    from genre_tagger.cli import main

    root = tmp_path_factory.mktemp("tiny")
    data = _synthetic_genre_folder(root / "data")
    out = root / "models"
    result = CliRunner().invoke(
        main, ["retrain", "--data", str(data), "--out", str(out), "--models", "knn,lightgbm", "--cache", str(root / "c.sqlite")]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_models(assessed_tiny_models, tmp_path_factory) -> Path:
    """The tiny bundles without their assessment, as a version before it wrote them (these
    must still load): their confidence is the vote share and they tag whatever they hear,
    which tests of scan's plumbing (tags, stops, failures) need."""
    out = tmp_path_factory.mktemp("plain") / "models"
    shutil.copytree(assessed_tiny_models, out)
    for meta_file in out.glob("*/bundle.json"):
        meta = json.loads(meta_file.read_text())
        meta.pop("assessment", None)
        meta_file.write_text(json.dumps(meta, indent=2))
    return out
