"""Shared fixtures: the GTZAN data beside the project, and small generated audio."""

from __future__ import annotations

import os
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
