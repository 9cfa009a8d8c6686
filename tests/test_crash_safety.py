"""Tag writes killed at random moments leave every file either untouched or fully tagged.

A child process tags many files with :func:`genre_tagger.tagging.journal.tag_file` and is
killed with SIGKILL mid-run, several times. Afterwards every file is byte-identical to
its original or reads back the new genre with identical decoded audio; every tagged
file is in the journal (written ahead); and what an interrupted write can leave behind
is a hidden ``.NAME.XXXXXXXX.genre-tagger.tmp`` copy, which the walk never takes for
music and the next ``scan --write`` removes once it is stale
(:class:`genre_tagger.tagging.library.StaleTemporaries`).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

import audiofactory
from genre_tagger.tagging import library
from genre_tagger.cli import main
from genre_tagger.tagging.journal import Journal, tag_file
from genre_tagger.tagging.tags import TEMP_SUFFIX, read_genres

FORMATS = ["mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff"]
COPIES = 3  # of each format per round
ROUNDS = 8
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")

CHILD = r"""
import sys
from genre_tagger.tagging.journal import Journal, tag_file
journal_path, *files = sys.argv[1:]
with Journal(journal_path) as journal:
    print("ready", flush=True)
    for path in files:
        tag_file(journal, path, ["Metal"])
        print(path, flush=True)
"""


def decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([frame.to_ndarray().ravel() for frame in container.decode(audio=0)])


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, tuple[bytes, np.ndarray]]:
    """One untagged file per format: its bytes and its decoded audio."""
    folder = tmp_path_factory.mktemp("originals")
    made = {}
    for i, ext in enumerate(FORMATS):
        y = (audiofactory.noise(4, amplitude=0.3, seed=i) + audiofactory.clicks(4, bpm=150)).clip(-1, 1)
        path = audiofactory.write(folder / f"original.{ext}", y)
        made[ext] = (path.read_bytes(), decoded(path))
    return made


def journalled(journal: Path) -> set[str]:
    if not journal.exists():
        return set()
    paths = set()
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by the kill: undo skips it too
            continue
        if "path" in record:  # an entry (the others: the header, roots, done records)
            paths.add(record["path"])
    return paths


def test_killed_tag_writes_leave_files_whole(tmp_path, originals):
    rng = random.Random(20240501)
    states = {"original": 0, "tagged": 0}
    leftovers = 0
    for round_ in range(ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        files = []
        for copy in range(COPIES):
            for ext in FORMATS:
                path = folder / f"track{copy}.{ext}"
                path.write_bytes(originals[ext][0])
                files.append(path)
        rng.shuffle(files)
        journal = folder.parent / f"journal{round_}.jsonl"
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(journal), *map(str, files)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "ready\n"
        for _ in range(rng.randrange(len(files) - 1)):  # let some files finish, then kill mid-way
            child.stdout.readline()
        time.sleep(rng.uniform(0, 0.005))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL

        written_ahead = journalled(journal)
        for path in files:
            original_bytes, original_audio = originals[path.suffix[1:]]
            if path.read_bytes() == original_bytes:
                states["original"] += 1
                continue
            assert read_genres(path) == ["Metal"], path
            np.testing.assert_array_equal(decoded(path), original_audio, err_msg=str(path))
            assert os.path.abspath(path) in written_ahead, f"{path} tagged but not journalled"
            states["tagged"] += 1

        # Nothing left behind is taken for music, and each leftover is a stale copy of one file.
        names = {path.name for path in files}
        extra = [p for p in folder.iterdir() if p.name not in names]
        for path in extra:
            match = TEMPORARY.match(path.name)
            assert match and match["name"] in names, path.name
        assert sorted(library.walk([folder], pytest.fail)) == sorted(files)
        leftovers += len(extra)
        cleaner = library.StaleTemporaries(older_than_s=0)
        assert sorted(p for f in files for p in cleaner.remove(f)) == sorted(extra)
        assert sorted(folder.iterdir()) == sorted(files)

        # The next run finishes the job.
        with Journal(journal) as again:
            for path in files:
                tag_file(again, path, ["Metal"])
        for path in files:
            assert read_genres(path) == ["Metal"]
            np.testing.assert_array_equal(decoded(path), originals[path.suffix[1:]][1])
        shutil.rmtree(folder)
    # The kills landed mid-run: some files were done, some not (left-over copies are rare).
    assert states["original"] > 0 and states["tagged"] > 0, (states, leftovers)


def test_next_write_removes_stale_temporaries(tmp_path, tiny_models, originals):
    """What a killed write left beside a file goes with the next ``scan --write`` of it."""
    music = tmp_path / "Music"
    music.mkdir()
    track = music / "a.flac"
    track.write_bytes(originals["flac"][0])
    stale = music / f".a.flac.abcd1234{TEMP_SUFFIX}"
    fresh = music / f".a.flac.efgh5678{TEMP_SUFFIX}"  # may belong to a write in progress elsewhere
    other = music / f".b.flac.abcd1234{TEMP_SUFFIX}"  # another file's: not this scan's business
    for path in (stale, fresh, other):
        path.write_bytes(originals["flac"][0][:1000])
    old = time.time() - library.STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))

    def scan(*extra):
        return CliRunner().invoke(main, ["scan", str(music), "--models-dir", str(tiny_models), "--model", "knn", *extra],
                                  catch_exceptions=False)

    assert scan().exit_code == 0  # a dry run changes nothing, leftovers included
    assert stale.exists() and fresh.exists() and other.exists()
    result = scan("--write", "--journal", str(tmp_path / "j.jsonl"))
    assert result.exit_code == 0, result.output
    assert read_genres(track) == ["Metal"]
    assert not stale.exists() and fresh.exists() and other.exists()
