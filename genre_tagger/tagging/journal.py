"""A journal of every genre written, so that a tagging run can be undone.

The journal is a JSON-lines file, one object per tag write::

    {"time": "2024-05-01T12:00:00+00:00", "path": "/music/a.mp3", "old": ["Rock"], "new": ["Jazz"]}

``old`` is what the file held before (``[]``: no genre), ``new`` what it holds after,
both as :func:`genre_tagger.tagging.tags.read_genres` reads them. An entry is appended and
fsync'ed to disk *before* the file is written (write-ahead), so after a crash the
journal names every file that may have changed. An entry whose write then failed is
harmless: undo finds the file still holding ``old`` and reports it as unchanged.

:func:`undo` walks a journal backwards and puts each file's old genres back, but only
where the file still holds exactly what was written; a file whose genre was changed
since (by hand, by another program) is left alone and reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Literal, TextIO

from genre_tagger.tagging.tags import (
    FileStamp,
    Policy,
    TagError,
    fsync,
    plan_genres,
    read_genres,
    stamp,
    stored_genres,
    write_genres,
)


class Journal:
    """An append-only JSON-lines journal of genre writes; use as a context manager.

    ``with Journal(path) as journal: tag_file(journal, track, "Jazz")``
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: TextIO | None = None

    def open(self) -> Journal:
        """Open the journal for appending (created with its directory when missing)."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            self._file = open(self.path, "a", encoding="utf-8")
            if created:  # make the new journal's name durable too
                fsync(self.path.parent, directory=True)
        return self

    def close(self) -> None:
        """Close the journal (entries are already on disk)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def record(self, path: str | os.PathLike[str], old: Sequence[str], new: Sequence[str]) -> None:
        """Append one entry and flush it to disk; call it *before* writing the file."""
        self.open()
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "path": os.path.abspath(path),
            "old": list(old),
            "new": list(new),
        }
        self._file.write(json.dumps(entry, ensure_ascii=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def default_path() -> Path:
    """A new journal file: ``$XDG_DATA_HOME/genre-tagger/journals/YYYYmmdd-HHMMSS-<pid>.jsonl``.

    ``$XDG_DATA_HOME`` defaults to ``~/.local/share``.
    """
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    now = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return base / "genre-tagger" / "journals" / f"{now}-{os.getpid()}.jsonl"


def tag_file(
    journal: Journal | None,
    path: str | os.PathLike[str],
    new_genres: str | Sequence[str],
    *,
    policy: Policy = "keep",
    id3_version: int = 4,
    id3_join: str | None = "; ",
    expect: FileStamp | None = None,
    dry_run: bool = False,
) -> list[str] | None:
    """Tag ``path`` with ``new_genres`` under ``policy``, journalling the change first.

    Reads the existing genres, plans with :func:`~genre_tagger.tagging.tags.plan_genres`,
    records the change in ``journal``, then writes it with
    :func:`~genre_tagger.tagging.tags.write_genres`. Returns the genres written, or ``None``
    when there was nothing to do. Raises :class:`~genre_tagger.tagging.tags.TagError` (the
    file untouched) as ``write_genres`` does. Without ``expect``, the file's stamp
    when its genres were read is used, so a file changed in between is not written.

    With ``dry_run`` nothing is journalled or written (``journal`` may be ``None``):
    the return value says what would be written.
    """
    try:
        now = stamp(path)
    except OSError as e:
        raise TagError(f"{os.fspath(path)}: {e.strerror or e}") from e
    if expect is None:
        expect = now
    elif now != expect:
        raise TagError(f"{os.fspath(path)}: file changed since it was analysed")
    existing = read_genres(path)
    planned = plan_genres(existing, new_genres, policy)
    if planned is None or dry_run:
        return planned
    if journal is None:
        raise ValueError("writing tags needs a journal")
    stored = stored_genres(path, planned, id3_version=id3_version, id3_join=id3_join)
    journal.record(path, existing, stored)
    write_genres(path, planned, id3_version=id3_version, id3_join=id3_join, expect=expect)
    return planned


UndoStatus = Literal["restored", "would restore", "unchanged", "changed", "error"]


@dataclass(frozen=True)
class UndoResult:
    """What undo did with one journal entry.

    ``status``: ``restored`` (old genres put back; ``would restore`` in a dry run), ``unchanged`` (the file already held
    the old genres, e.g. the journalled write never happened), ``changed`` (the file's
    genre changed since it was written: left alone) or ``error`` (``message`` says why).
    """

    path: str
    status: UndoStatus
    message: str
    old: tuple[str, ...] = ()
    new: tuple[str, ...] = ()


def _valid(entry: object) -> bool:
    """Whether a parsed line is a journal entry: a path and two lists of strings."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        return False
    return all(isinstance(entry.get(k), list) and all(isinstance(g, str) for g in entry[k]) for k in ("old", "new"))


def _entries(journal_path: Path) -> list[tuple[int, dict | None, str]]:
    """``(line number, entry or None, problem)`` for each non-blank journal line."""
    out = []
    with open(journal_path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if not _valid(entry):
                    raise ValueError("missing or malformed path/old/new")
            except ValueError as e:  # json.JSONDecodeError is a ValueError
                out.append((number, None, f"journal line {number} unreadable ({e}); skipped"))
            else:
                out.append((number, entry, ""))
    return out


def undo(journal_path: str | os.PathLike[str], *, dry_run: bool = False) -> list[UndoResult]:
    """Undo the writes in a journal, newest first; one result per entry.

    With ``dry_run`` nothing is written; what would be restored is reported as
    ``would restore`` (later entries for the same file then see it unrestored).

    A file gets its old genres back (its genre tag removed when it had none) only when
    it still holds exactly the genres written. Per-file failures are reported in the
    results, never raised. Undo writes with ``id3_join=None``, so an old value is
    restored as the separate values it was read as.
    """
    results: list[UndoResult] = []
    for _, entry, problem in reversed(_entries(Path(journal_path))):
        if entry is None:
            results.append(UndoResult(path="", status="error", message=problem))
            continue
        path, old, new = entry["path"], entry["old"], entry["new"]
        done = {"path": path, "old": tuple(old), "new": tuple(new)}
        try:
            before = stamp(path)
            current = read_genres(path)
            if current == old:
                results.append(UndoResult(status="unchanged", message="already holds the old genres", **done))
            elif current != new:
                results.append(
                    UndoResult(status="changed", message=f"changed since (now {current!r}), left alone", **done)
                )
            elif dry_run:
                results.append(UndoResult(status="would restore", message=f"would restore {old!r}", **done))
            else:
                write_genres(path, old, id3_join=None, expect=before)
                message = f"restored {old!r}" if old else "genre removed"
                results.append(UndoResult(status="restored", message=message, **done))
        except (TagError, OSError, ValueError) as e:
            results.append(UndoResult(status="error", message=str(e), **done))
    return results
