"""A journal of every genre written, so that a tagging run can be undone.

The journal is a JSON-lines file of records::

    {"journal": "genre-tagger/2", "time": "2026-12-02T12:00:00+00:00"}              first line
    {"roots": ["/music"], "time": "..."}                                       what was scanned
    {"time": "...", "path": "/music/a.mp3", "old": ["Rock"], "new": ["Jazz"], "stamp": [4213, 1733...]}
    {"done": "/music/a.mp3", "stamp": [4213, 1733...]}

An entry (``path``, ``old``, ``new``: the genres before and after, as
:func:`genre_tagger.tagging.tags.read_genres` reads them, and the file's ``stamp`` before)
is appended and fsync'ed *before* the file is written (write-ahead), so after a crash
the journal names every file that may have changed; a ``done`` record with the file's
stamp after the write follows it.

:func:`undo` walks a journal backwards and puts each file's old genres back, but only
what a journal of ours could hold, each entry checked against the journal's own
records: a file under one of its ``roots``, still with the stamp of its ``done`` record
and holding exactly the genres written, genres of sane length and characters. A file
changed since (retagged by hand, by another program) is left alone; every refusal is one
line of its result.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Literal, TextIO

from genre_tagger.pipeline.cache import Cache
from genre_tagger.pipeline.files import check_free_space, first_line
from genre_tagger.pipeline.stopping import uninterrupted
from genre_tagger.tagging.tags import (
    FileStamp,
    Policy,
    TagError,
    check_writable,
    fsync,
    plan_genres,
    read_genres,
    stamp,
    stored_genres,
    write_genres,
)

FORMAT = "genre-tagger/2"
#: what a journal of ours holds at most in one entry
MAX_GENRES, MAX_GENRE_LENGTH = 32, 255


class JournalError(Exception):
    """A journal that cannot be used (not one of ours, not writable); one line naming it."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _first_record(path: Path) -> dict | None:
    """The first line of ``path`` as JSON, or ``None`` when it is not a JSON object."""
    try:
        record = json.loads(first_line(path))
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class Journal:
    """An append-only JSON-lines journal of genre writes; use as a context manager.

    ``with Journal(path, roots=[library]) as journal: tag_file(journal, track, "Jazz")``

    ``roots`` are the folders (or files) the writes belong to, which undo checks each
    entry against; without them, each file's own folder is recorded as it is written.
    """

    def __init__(self, path: str | os.PathLike[str], roots: Iterable[str | os.PathLike[str]] | None = None) -> None:
        self.path = Path(path)
        self.roots = None if roots is None else [os.path.abspath(root) for root in roots]
        self._covered: list[str] = []
        self._file: TextIO | None = None

    def open(self) -> Journal:
        """Open the journal for appending: created with its folder when missing, refused
        (:class:`JournalError`) when the file is not a journal of ours or cannot be written."""
        if self._file is not None:
            return self
        created = not self.path.exists()
        if not created and not self.path.is_file():
            raise JournalError(f"{self.path}: is not a regular file (a FIFO, a device or a folder): not written")
        if not created and (_first_record(self.path) or {}).get("journal") != FORMAT:
            raise JournalError(f"{self.path}: exists and is not a genre-tagger journal; choose another file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_free_space(self.path.parent)
            self._file = open(self.path, "a", encoding="utf-8")
            if created:
                self._append({"journal": FORMAT, "time": _now()})
                fsync(self.path.parent, directory=True)  # make the new journal's name durable too
            if self.roots:
                self._append({"roots": self.roots, "time": _now()})
                self._covered = list(self.roots)
        except OSError as error:
            self.close()
            raise JournalError(f"{self.path}: cannot be written ({error.strerror or error})") from None
        return self

    def close(self) -> None:
        """Close the journal (records are already on disk)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _append(self, record: dict) -> None:
        try:
            self._file.write(json.dumps(record, ensure_ascii=True) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:
            raise JournalError(f"{self.path}: cannot be written ({error.strerror or error})") from None

    def record(self, path: str | os.PathLike[str], old: Sequence[str], new: Sequence[str],
               before: FileStamp | None = None) -> None:
        """Append one entry and flush it to disk; call it *before* writing the file."""
        self.open()
        path = os.path.abspath(path)
        if not _under(path, self._covered):
            self._covered.append(os.path.dirname(path))
            self._append({"roots": [os.path.dirname(path)], "time": _now()})
        # the file the write reaches (through symbolic links), which undo must reach again
        entry = {"time": _now(), "path": path, "real": os.path.realpath(path), "old": list(old), "new": list(new)}
        if before is not None:
            entry["stamp"] = [before.size, before.mtime_ns]
        self._append(entry)

    def done(self, path: str | os.PathLike[str], after: FileStamp) -> None:
        """Record that the write of ``path`` finished, with the file's stamp after it."""
        self._append({"done": os.path.abspath(path), "stamp": [after.size, after.mtime_ns]})


def _under(path: str, roots: Iterable[str]) -> bool:
    for root in roots:
        try:
            if os.path.commonpath([path, root]) == root:
                return True
        except ValueError:  # different drives
            continue
    return False


def journals_dir() -> Path:
    """Where journals go by default: ``$XDG_DATA_HOME/genre-tagger/journals``
    (``$XDG_DATA_HOME`` defaults to ``~/.local/share``)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "genre-tagger" / "journals"


def default_path() -> Path:
    """A new journal file: ``journals_dir()/YYYYmmdd-HHMMSS-<microseconds>-<pid>.jsonl``."""
    now = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return journals_dir() / f"{now}-{os.getpid()}.jsonl"


@dataclass(frozen=True)
class JournalInfo:
    """One journal of :func:`list_journals`: when it was started, the folders its scans
    were given, how many writes it records and how many finished."""

    path: Path
    started: str
    roots: tuple[str, ...]
    writes: int
    finished: int


def list_journals(folder: Path | None = None) -> list[JournalInfo]:
    """The journals of ours in ``folder`` (default :func:`journals_dir`), newest first."""
    folder = journals_dir() if folder is None else folder
    found = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        first = _first_record(path)
        if not first or first.get("journal") != FORMAT:
            continue
        records = _read(path)
        found.append(JournalInfo(path, str(first.get("time", "")), tuple(dict.fromkeys(records.roots)),
                                 sum(entry is not None for _, entry, _ in records.entries),
                                 sum(len(stamps) for stamps in records.done.values())))
    return sorted(found, key=lambda info: (info.started, info.path.name), reverse=True)


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
    :func:`~genre_tagger.tagging.tags.write_genres` and records that it is done. Returns
    the genres written, or ``None`` when there was nothing to do. Raises
    :class:`~genre_tagger.tagging.tags.TagError` (the file untouched) as ``write_genres``
    does, and :class:`~genre_tagger.tagging.tags.UnsafeTagError` for a tag that cannot be
    rewritten without losing other metadata, in a dry run too. Without ``expect``, the
    file's stamp when its genres were read is used, so a file changed in between is not
    written.

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
    check_writable(path)  # a tag that cannot be rewritten safely is left alone, dry run or not
    existing = read_genres(path)
    planned = plan_genres(existing, new_genres, policy)
    if planned is None or dry_run:
        return planned
    if journal is None:
        raise ValueError("writing tags needs a journal")
    stored = stored_genres(path, planned, id3_version=id3_version, id3_join=id3_join)
    journal.record(path, existing, stored, before=expect)
    with uninterrupted():  # a second Ctrl-C waits until the file and its record are both written
        write_genres(path, planned, id3_version=id3_version, id3_join=id3_join, expect=expect)
        try:
            journal.done(path, stamp(path))
        except JournalError as error:
            raise JournalError(f"{error}; {os.fspath(path)} was tagged, but the journal does not record that the "
                               "write finished (undo will leave it alone)") from None
    return planned


UndoStatus = Literal["restored", "would restore", "unchanged", "changed", "error"]


@dataclass(frozen=True)
class UndoResult:
    """What undo did with one journal entry.

    ``status``: ``restored`` (old genres put back; ``would restore`` in a dry run),
    ``unchanged`` (the file already held the old genres, e.g. the journalled write never
    happened), ``changed`` (the file changed since it was written: left alone) or
    ``error`` (``message`` says why: the file is gone, or the entry is not one a journal
    of ours could hold).
    """

    path: str
    status: UndoStatus
    message: str
    old: tuple[str, ...] = ()
    new: tuple[str, ...] = ()


@dataclass
class _Records:
    """A journal's records: its roots, its entries (line number, entry or problem), and
    the stamps each file had after its writes, in order."""

    roots: list[str] = field(default_factory=list)
    entries: list[tuple[int, dict | None, str]] = field(default_factory=list)
    done: dict[str, list[tuple[int, list]]] = field(default_factory=dict)

    def stamp_after(self, line: int, path: str) -> FileStamp | None:
        """The stamp of the ``done`` record that follows the entry on ``line``."""
        for number, value in self.done.get(path, []):
            if number > line:
                return FileStamp(*value)
        return None


def _genres_problem(genres: object) -> str | None:
    """Why ``genres`` is not a list of genres a journal of ours could hold, else ``None``."""
    if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
        return "its genres are not a list of text"
    if len(genres) > MAX_GENRES:
        return f"it holds {len(genres)} genres, more than {MAX_GENRES}"
    for genre in genres:
        if len(genre) > MAX_GENRE_LENGTH:
            return f"a genre of {len(genre)} characters, longer than {MAX_GENRE_LENGTH}"
        if not genre.strip() or any(unicodedata.category(ch) in ("Cc", "Cf") for ch in genre):
            return "a genre blank or with control characters"
    return None


def _read(journal_path: Path) -> _Records:
    records = _Records()
    with open(journal_path, encoding="utf-8") as f:
        lines = list(enumerate(f, 1))
    for number, line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            records.entries.append((number, None, f"journal line {number} unreadable ({e}); skipped"))
            continue
        if "journal" in record:
            continue
        if "roots" in record:
            roots = record["roots"]
            if isinstance(roots, list) and all(isinstance(r, str) and os.path.isabs(r) for r in roots):
                records.roots += [os.path.normpath(r) for r in roots]
        elif "done" in record:
            if isinstance(record["done"], str) and _is_stamp(record.get("stamp")):
                records.done.setdefault(record["done"], []).append((number, record["stamp"]))
        elif isinstance(record.get("path"), str) and all(k in record for k in ("old", "new")):
            records.entries.append((number, record, ""))
        else:
            records.entries.append((number, None, f"journal line {number} unreadable (missing or malformed "
                                                  "path/old/new); skipped"))
    return records


def _is_stamp(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v >= 0 for v in value)


def _refused(records: _Records, entry: dict) -> str | None:
    """Why undo refuses ``entry``, or ``None``: what a journal of ours could not hold."""
    path = entry["path"]
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        return "refused: its path is not an absolute, normalised path"
    if not _under(path, records.roots):
        return "refused: the file lies outside every folder this journal recorded as scanned"
    real = entry.get("real")  # journals before it was recorded: the real path must lie under a root too
    if real is not None and os.path.realpath(path) != real:
        return "refused: its path now leads to another file than the one written (a symbolic link changed)"
    if real is None and not _under(os.path.realpath(path), [os.path.realpath(root) for root in records.roots]):
        return "refused: its path leads outside every folder this journal recorded as scanned"
    for key in ("old", "new"):
        problem = _genres_problem(entry[key])
        if problem:
            return f"refused: {problem}"
    return None


def undo(journal_path: str | os.PathLike[str], *, dry_run: bool = False, cache: Cache | None = None) -> list[UndoResult]:
    """Undo the writes in a journal, newest first; one result per entry.

    With ``dry_run`` nothing is written; what would be restored is reported as
    ``would restore`` (later entries for the same file then see it unrestored).

    A file gets its old genres back (its genre tag removed when it had none) only when
    it still holds exactly the genres written and the stamp it had after the write (or
    after this undo's own restore of a later entry). Per-file failures and refused
    entries are reported in the results, never raised. Undo writes with ``id3_join=None``,
    so an old value is restored as the separate values it was read as. With ``cache``,
    what it holds for a restored file follows the file's new stamp (only its tags
    changed), so the next scan does not analyse it again. Raises :class:`JournalError`
    for a file that is not a journal of ours.
    """
    journal_path = Path(journal_path)
    first = _first_record(journal_path)
    if first is None or first.get("journal") != FORMAT:
        raise JournalError(f"{journal_path}: not a genre-tagger journal of this version (its first line is not "
                           f"a {FORMAT} header); nothing was undone")
    records = _read(journal_path)
    restored_to: dict[str, FileStamp] = {}  # files this undo rewrote, and their stamps since
    results: list[UndoResult] = []
    for line, entry, problem in reversed(records.entries):
        if entry is None:
            results.append(UndoResult(path="", status="error", message=problem))
            continue
        results.append(_undo_entry(records, line, entry, restored_to, dry_run, cache))
    return results


def _undo_entry(records: _Records, line: int, entry: dict, restored_to: dict[str, FileStamp],
                dry_run: bool, cache: Cache | None) -> UndoResult:
    path = entry["path"]
    refused = _refused(records, entry)
    old, new = entry["old"], entry["new"]
    done = {"path": path, "old": tuple(old) if isinstance(old, list) else (), "new": tuple(new) if isinstance(new, list) else ()}
    if refused:
        return UndoResult(status="error", message=refused, **done)
    try:
        before = stamp(path)
        current = read_genres(path)
        expected = restored_to.get(path) or records.stamp_after(line, path)
        if current == old:
            return UndoResult(status="unchanged", message="already holds the old genres", **done)
        if current != new:
            return UndoResult(status="changed", message=f"changed since (now {current!r}), left alone", **done)
        if expected is None:
            return UndoResult(status="error", message="not restored: the journal does not record that this write "
                                                      "finished", **done)
        if before != expected:
            return UndoResult(status="changed", message="changed since it was tagged (its size or modification time "
                                                        "differ), left alone", **done)
        if dry_run:
            return UndoResult(status="would restore", message=f"would restore {old!r}", **done)
        write_genres(path, old, id3_join=None, expect=before)
        restored_to[path] = after = stamp(path)
        if cache is not None:
            cache.restamp((path, before.size, before.mtime_ns), (path, after.size, after.mtime_ns))
        return UndoResult(status="restored", message=f"restored {old!r}" if old else "genre removed", **done)
    except (TagError, OSError, ValueError) as e:
        return UndoResult(status="error", message=str(e), **done)
