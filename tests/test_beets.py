"""The beets plugin (``beetsplug/genretagger.py``) in a real beets library.

Each test makes a beets home in a temporary folder (``BEETSDIR``: its ``config.yaml``,
library database and music folder), imports generated audio with beets' own importer
(``beet import -A -q``: no autotagging, no questions) and runs ``beet`` as a user does, in
a subprocess, so beets loads the plugin from ``plugins: genretagger`` itself. The models
are the tests' ``tiny_models`` (knn on generated 'classical' tones and 'metal' noise with
clicks), never the shipped ones. The library is read back with beets' ``Library``, the
files with :func:`genre_tagger.tagging.tags.read_genres`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("beets", reason="beets is not installed: pip install '.[beets]' (the test extra has it)")

import beets  # noqa: E402
from beets.library import Item, Library  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from mediafile import MediaFile  # noqa: E402  (a dependency of beets)

import audiofactory  # noqa: E402
from genre_tagger.cli import main  # noqa: E402
from genre_tagger.tagging.tags import read_genres  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SR = 22050


def classical(seconds: float = 7.0, i: int = 5) -> np.ndarray:
    """Tones like the tiny models' 'classical' clips (conftest's synthetic genres)."""
    low, high = 220 * (1 + i / 4), 330 * (1 + i / 4)
    return audiofactory.tone(seconds, SR, low, 0.3) + audiofactory.tone(seconds, SR, high, 0.1)


def metal(seconds: float = 7.0, i: int = 5) -> np.ndarray:
    """Noise and clicks like the tiny models' 'metal' clips."""
    loud = audiofactory.noise(seconds, SR, 0.3, seed=i) + audiofactory.clicks(seconds, SR, bpm=140 + 10 * i)
    return loud.clip(-1, 1)


def track(path: Path, signal: np.ndarray, title: str, number: int, genre: str | None = None) -> Path:
    """An audio file with the tags an album has (and ``genre``, if given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    audiofactory.write(path, signal, SR)
    tags = MediaFile(str(path))
    tags.update({"title": title, "artist": "Generator", "album": path.parent.name, "track": number})
    if genre:
        tags.genres = [genre]
    tags.save()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def plugin_installed() -> bool:
    """Whether a fresh interpreter (as ``beet`` is, outside the repository) imports the plugin."""
    check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('beetsplug.genretagger') is None)"
    return subprocess.run([sys.executable, "-c", check], cwd=os.sep, capture_output=True).returncode == 0


class BeetsHome:
    """A beets home in a temporary folder: configuration, library, music folder."""

    def __init__(self, root: Path, models: Path, **genretagger):
        self.root = root
        self.music = root / "music"
        self.db = root / "library.db"
        self.music.mkdir(parents=True)
        plugin_settings = {"auto": False, "model": "knn", "models_dir": str(models), **genretagger}
        # the installed package provides beetsplug.genretagger; where it does not (an
        # editable install made before the plugin existed), beets' own pluginpath does
        plugin_path = [] if plugin_installed() else [str(ROOT / "beetsplug")]
        self.write_config("config.yaml", {
            "directory": str(self.music),
            "library": str(self.db),
            "plugins": ["genretagger"],
            "pluginpath": plugin_path,
            "create_backup_before_migrations": False,
            "import": {"write": True, "copy": False, "resume": False, "incremental": False, "log": None},
            "ui": {"color": False},
            "genretagger": plugin_settings,
        })

    def write_config(self, name: str, settings: dict) -> Path:
        """A YAML file of ``settings`` in the beets home (``config.yaml``, or an overlay for ``beet -c``)."""
        import yaml  # a dependency of beets

        path = self.root / name
        path.write_text(yaml.safe_dump(settings))
        return path

    def beet(self, *args: str, expect: int = 0) -> str:
        """Run ``beet ARGS`` as a user would; its output (standard output and error)."""
        env = {**os.environ, "BEETSDIR": str(self.root), "HOME": str(self.root)}
        done = subprocess.run([sys.executable, "-m", "beets", *map(str, args)], env=env, cwd=self.root,
                              capture_output=True, text=True, timeout=600)
        output = done.stdout + done.stderr
        assert done.returncode == expect, output
        return output

    def items(self) -> dict[str, Item]:
        """The library's items by file name, as beets reads its database."""
        lib = Library(str(self.db), str(self.music))
        try:
            return {Path(os.fsdecode(item.path)).name: item for item in lib.items()}
        finally:
            lib._close()


def genres_of(item: Item) -> list[str]:
    """An item's genres, whichever field the installed beets keeps them in."""
    value = item.get("genres" if "genres" in Item._fields else "genre", with_album=False)
    return list(value) if isinstance(value, list) else [g.strip() for g in (value or "").split(";") if g.strip()]


def confidence(item: Item) -> float:
    """The flexible attribute ``genre_confidence`` (text in the database: this process
    has not loaded the plugin that types it)."""
    return float(item["genre_confidence"])


@pytest.fixture(autouse=True)
def beets_config(tmp_path, monkeypatch):
    """This process reads the library with beets' defaults only: never a user's beets
    configuration, never the real BEETSDIR."""
    monkeypatch.setenv("BEETSDIR", str(tmp_path / "beets"))
    beets.config.clear()
    beets.config.read(user=False, defaults=True)
    beets.config["create_backup_before_migrations"] = False
    yield
    beets.config.clear()
    beets.config.read(user=False, defaults=True)


@pytest.fixture
def home(tmp_path, tiny_models) -> BeetsHome:
    return BeetsHome(tmp_path / "beets", tiny_models)


@pytest.fixture
def album(tmp_path) -> Path:
    """A folder of two tracks to import: a 'classical' flac and a 'metal' mp3."""
    folder = tmp_path / "incoming" / "Generated"
    track(folder / "01 calm.flac", classical(), "Calm", 1)
    track(folder / "02 loud.mp3", metal(), "Loud", 2)
    return folder


def scan(*args) -> str:
    """``genre-tagger scan`` with the same models; its output."""
    result = CliRunner().invoke(main, ["scan", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_pretend_changes_nothing_then_genretag_tags_library_and_files(home, album, tiny_models):
    scan(album, "--models-dir", tiny_models, "--model", "knn")  # the dry run fills genre-tagger's cache
    home.beet("import", "-A", "-q", album)
    files = sorted(album.iterdir())
    before = {path.name: digest(path) for path in files}

    pretend = home.beet("genretag", "-p")
    assert "would tag" in pretend and "-> Classical" in pretend and "-> Metal" in pretend
    assert "2 from cache, 0 analysed" in pretend  # what scan analysed is not analysed again
    assert "[1/2]" in pretend and "[2/2]" in pretend  # how far the run is, line by line
    assert "would tag" in home.beet("genretag", "--pretend", "title:Calm")  # the long form
    assert all(not genres_of(item) and "genre_confidence" not in item for item in home.items().values())
    assert {path.name: digest(path) for path in files} == before

    tagged = home.beet("genretag")
    assert "tagged" in tagged
    items = home.items()
    assert genres_of(items["01 calm.flac"]) == ["Classical"]
    assert genres_of(items["02 loud.mp3"]) == ["Metal"]
    assert all(0 < confidence(item) <= 1 for item in items.values())
    # import.write is on: beets wrote the files, with its own writer
    assert read_genres(album / "01 calm.flac") == ["Classical"]
    assert read_genres(album / "02 loud.mp3") == ["Metal"]
    # ... and the cache followed the files' new stamps: scan finds both there
    assert "2 from cache, 0 analysed" in scan(album, "--models-dir", tiny_models, "--model", "knn")


def test_keep_policy_keeps_an_existing_genre_and_force_replaces_it(home, tmp_path):
    folder = tmp_path / "incoming" / "Tagged"
    track(folder / "01 calm.flac", classical(), "Calm", 1, genre="Jazz")
    track(folder / "02 loud.flac", metal(), "Loud", 2)
    home.beet("import", "-A", "-q", folder)

    kept = home.beet("genretag")
    assert "kept" in kept and "already tagged Jazz" in kept
    assert "1 analysed" in kept  # the track kept was not even analysed
    items = home.items()
    assert genres_of(items["01 calm.flac"]) == ["Jazz"] and read_genres(folder / "01 calm.flac") == ["Jazz"]
    assert genres_of(items["02 loud.flac"]) == ["Metal"]

    appended = home.write_config("append.yaml", {"genretagger": {"policy": "append"}})
    home.beet("-c", appended, "genretag", "title:Calm")
    assert genres_of(home.items()["01 calm.flac"]) == ["Jazz", "Classical"]

    home.beet("genretag", "--force", "title:Calm")
    assert genres_of(home.items()["01 calm.flac"]) == ["Classical"]
    assert read_genres(folder / "01 calm.flac") == ["Classical"]


def test_several_genres_names_and_no_write(home, tmp_path):
    folder = tmp_path / "incoming" / "Mixed"
    track(folder / "01 loud.flac", metal(), "Loud", 1)
    home.beet("import", "-A", "-q", folder)
    before = digest(folder / "01 loud.flac")

    # count 2 with a margin of 1: the runner-up joins the winner (these models have no
    # threshold, and LightGBM, unlike knn, gives every class some probability);
    # genre_names renames a class; without import.write only the library changes
    overlay = home.write_config("overlay.yaml", {
        "import": {"write": False},
        "genretagger": {"model": "lightgbm", "count": 2, "genre_margin": 1.0, "genre_names": {"metal": "Heavy Metal"}},
    })
    home.beet("-c", overlay, "genretag")
    assert genres_of(home.items()["01 loud.flac"]) == ["Heavy Metal", "Classical"]
    assert digest(folder / "01 loud.flac") == before and read_genres(folder / "01 loud.flac") == []


def test_a_silent_track_is_not_tagged_and_says_why(home, tmp_path):
    folder = tmp_path / "incoming" / "Quiet"
    track(folder / "01 silence.flac", np.zeros(7 * SR, dtype=np.float32), "Silence", 1)
    track(folder / "02 calm.flac", classical(), "Calm", 2)
    home.beet("import", "-A", "-q", folder)

    output = home.beet("genretag")
    lines = [line for line in output.splitlines() if line.startswith("genretagger: [") and " uncertain " in line]
    assert len(lines) == 1 and "01 silence.flac" in lines[0] and "silent" in lines[0], output
    items = home.items()
    assert genres_of(items["01 silence.flac"]) == [] and "genre_confidence" not in items["01 silence.flac"]
    assert read_genres(folder / "01 silence.flac") == []
    assert genres_of(items["02 calm.flac"]) == ["Classical"]
    assert "1 tagged" in output and "1 uncertain" in output


def test_auto_tags_an_imported_album_at_its_library_paths(tmp_path, album, tiny_models):
    home = BeetsHome(tmp_path / "beets", tiny_models, auto=True)
    copying = home.write_config("copy.yaml", {"import": {"copy": True}})
    home.beet("-c", copying, "import", "-A", "-q", album)

    items = home.items()
    assert {name: genres_of(item) for name, item in items.items()} == {"01 Calm.flac": ["Classical"],
                                                                       "02 Loud.mp3": ["Metal"]}
    for item in items.values():
        path = Path(os.fsdecode(item.path))
        assert home.music in path.parents  # copied into the library, and tagged there
        assert read_genres(path) == genres_of(item) and 0 < confidence(item) <= 1
    assert read_genres(album / "01 calm.flac") == []  # the originals are beets' to leave alone
    # the library's own paths were analysed and cached
    assert "2 from cache, 0 analysed" in scan(home.music, "--models-dir", tiny_models, "--model", "knn")


def test_a_model_that_is_not_there_is_a_usage_error(home, album):
    home.beet("import", "-A", "-q", album)
    wrong = home.write_config("wrong.yaml", {"genretagger": {"model": "nope"}})
    output = home.beet("-c", wrong, "genretag", expect=1)
    assert "no model 'nope'" in output and "knn" in output
    assert all(not genres_of(item) for item in home.items().values())
