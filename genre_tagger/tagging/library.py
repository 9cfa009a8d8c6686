"""Finding the audio files of a music library."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from genre_tagger.pipeline.audio import AUDIO_EXTENSIONS
from genre_tagger.tagging.tags import TEMP_RANDOM, TEMP_SUFFIX, temporary_prefix

# A tag write's temporary file untouched for this long is left over from a write that
# was interrupted (killed, power cut): a write in progress touches its copy within
# seconds. Younger ones may belong to another genre-tagger process and are left alone.
STALE_TEMP_SECONDS = 600


def is_audio(path: Path) -> bool:
    """True for a file name with a supported audio extension (any case)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def walk(paths: Iterable[str | Path], on_error: Callable[[str], None]) -> Iterator[Path]:
    """Audio files under ``paths``, each folder's files sorted by name, each file once.

    Files named explicitly are yielded when they have an audio extension. In folders,
    hidden files and folders (name starting with ".") are skipped, symbolic links are
    followed, and a folder already visited (a symlink loop, or two links to one folder)
    is reported through ``on_error`` and not entered again, as is a folder that cannot
    be read. A file reached twice (named and inside a named folder, or through a
    symbolic link) is yielded the first time only. Nothing here raises for one bad folder.
    """
    visited: set[tuple[int, int]] = set()
    seen: set[str] = set()
    for root in map(Path, paths):
        if root.is_file():
            found: Iterable[Path] = [root] if is_audio(root) else []
            if not is_audio(root):
                on_error(f"{root}: not a supported audio file")
        elif root.is_dir():
            found = _walk_folder(root, visited, on_error)
        else:
            on_error(f"{root}: {_missing_reason(root)}")
            continue
        for path in found:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                yield path


def _missing_reason(path: Path) -> str:
    """Why ``path`` is neither a file nor a folder, in words."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link" if path.is_symlink() else "no such file or folder"
    except OSError as error:
        return _os_reason(error)
    return "not a regular file or folder"


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    return f"cannot read ({error.strerror or error})"


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
            on_error(f"{path}: {_os_reason(error)}")
    for subfolder in subfolders:
        yield from _walk_folder(subfolder, visited, on_error)


class StaleTemporaries:
    """Removes the temporary files interrupted tag writes left beside audio files.

    :func:`genre_tagger.tagging.tags.write_genres` writes a hidden copy beside the file
    (``.NAME.XXXXXXXX.genre-tagger.tmp``, a long NAME shortened: see
    :func:`~genre_tagger.tagging.tags.temporary_prefix`) and renames it over the original; a process
    killed in between leaves the copy behind. Such a copy is never taken for music (the
    walk skips hidden files, and ``.tmp`` is no audio extension), and ``scan --write``
    removes those of the files it scans, once they are :data:`STALE_TEMP_SECONDS` old.
    Each folder is listed once per instance.
    """

    def __init__(self, older_than_s: float = STALE_TEMP_SECONDS):
        self.older_than_s = older_than_s
        self._by_folder: dict[Path, dict[str, list[Path]]] = {}

    def of(self, path: str | Path) -> list[Path]:
        """The stale temporary files of the audio file ``path`` (symbolic links followed)."""
        target = Path(os.path.realpath(path))
        if target.parent not in self._by_folder:
            self._by_folder[target.parent] = self._list(target.parent)
        return self._by_folder[target.parent].get(temporary_prefix(target.name), [])

    def remove(self, path: str | Path) -> list[Path]:
        """Remove the stale temporary files of ``path``; returns those removed."""
        removed = []
        for temporary in self.of(path):
            try:
                os.unlink(temporary)
            except OSError:
                continue
            removed.append(temporary)
        return removed

    def _list(self, folder: Path) -> dict[str, list[Path]]:
        """The stale temporary files in ``folder``, by their prefix (see temporary_prefix)."""
        found: dict[str, list[Path]] = {}
        now = time.time()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
                        continue
                    prefix = name[: -len(TEMP_SUFFIX) - TEMP_RANDOM]
                    if len(prefix) < 3 or not prefix.endswith("."):
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if entry.is_file(follow_symlinks=False) and now - st.st_mtime >= self.older_than_s:
                        found.setdefault(prefix, []).append(Path(entry.path))
        except OSError:
            pass
        return found
