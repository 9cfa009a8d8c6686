"""Finding the audio files of a music library."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

from genre_tagger.audio import AUDIO_EXTENSIONS


def is_audio(path: Path) -> bool:
    """True for a file name with a supported audio extension (any case)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def walk(paths: Iterable[str | Path], on_error: Callable[[str], None]) -> Iterator[Path]:
    """Audio files under ``paths``, each folder's files sorted by name.

    Files named explicitly are yielded when they have an audio extension. In folders,
    hidden files and folders (name starting with ".") are skipped, symbolic links are
    followed, and a folder already visited (a symlink loop, or two links to one folder)
    is reported through ``on_error`` and not entered again, as is a folder that cannot
    be read. Nothing here raises for one bad folder.
    """
    visited: set[tuple[int, int]] = set()
    for root in map(Path, paths):
        if root.is_file():
            if is_audio(root):
                yield root
            else:
                on_error(f"{root}: not a supported audio file")
            continue
        if not root.is_dir():
            on_error(f"{root}: no such file or folder")
            continue
        yield from _walk_folder(root, visited, on_error)


def _walk_folder(folder: Path, visited: set, on_error: Callable[[str], None]) -> Iterator[Path]:
    try:
        st = folder.stat()
    except OSError as error:
        on_error(f"{folder}: cannot read folder ({error.strerror})")
        return
    if (st.st_dev, st.st_ino) in visited:
        on_error(f"{folder}: symlink loop or folder already scanned, skipped")
        return
    visited.add((st.st_dev, st.st_ino))
    try:
        with os.scandir(folder) as entries:
            entries = sorted(entries, key=lambda e: e.name)
    except OSError as error:
        on_error(f"{folder}: cannot read folder ({error.strerror})")
        return
    subfolders = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir():
                subfolders.append(path)
            elif entry.is_file() and is_audio(path):
                yield path
            elif entry.is_symlink() and not path.exists():
                on_error(f"{path}: broken symbolic link")
        except OSError as error:
            on_error(f"{path}: {error.strerror}")
    for subfolder in subfolders:
        yield from _walk_folder(subfolder, visited, on_error)
