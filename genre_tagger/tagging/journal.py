"""A journal of every genre written, so that a tagging run can be undone.

The journal is a JSON-lines file of records (ASCII: ``ensure_ascii``)::

    {"journal": "genre-tagger/3", "id": "9f1c...", "time": "2026-12-02T12:00:00+00:00"}   first line
    {"roots": ["/music"], "time": "..."}                                       what was scanned
    {"time": "...", "path": "/music/a.mp3", "real": "/music/a.mp3", "old": ["Rock"], "new": ["Jazz"], "stamp": [4213, 1733...]}
    {"done": "/music/a.mp3", "stamp": [4213, 1733...]}
    {"undone": "2026-12-03T09:00:00+00:00", "restored": 1}                     an undo --write ran

An entry (``path``, ``old``, ``new``: the genres before and after, as
:func:`genre_tagger.tagging.tags.read_genres` reads them, and the file's ``stamp`` before)
is appended and fsync'ed *before* the file is written (write-ahead), so after a crash
the journal names every file that may have changed; a ``done`` record follows the write.
A record that cannot be written whole (a full disk) is cut off again, so the journal
stays whole lines.

Every ``roots`` record is also registered, before it is written to the journal, in
genre-tagger's own registry (:func:`registry_path`, keyed by the journal's ``id``). Undo
trusts a journal's roots only as far as the registry confirms them: a journal edited or
made by hand cannot name folders no scan of this account was given.

:func:`undo_chain` reads and checks every line of its journals before the first write
(a malformed line is one :class:`JournalError` naming it; only a final partial line, a
write cut short, is ignored with a warning), then walks them backwards and puts each
file's old genres back when it holds exactly the genres written -- whatever its size or
modification time, so undos chain: a newer journal's undo leaves what the older one
wrote. A file whose genres are neither (retagged by hand) is left alone; every refusal
is one line of its result.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Literal

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

FORMAT = "genre-tagger/3"
#: the longest journal line (bytes): a file whose genres would not fit is not written,
#: so that whatever a journal records, undo can give back
MAX_LINE = 1 << 20
#: the largest journal (and registry) undo reads: what bounds its memory
MAX_JOURNAL = 1 << 30


class JournalError(Exception):
    """A journal that cannot be used (not one of ours, not writable, a malformed line); one line naming it."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _first_record(path: Path) -> dict | None:
    """The first line of ``path`` as JSON, or ``None`` when it is not a JSON object."""
    try:
        record = json.loads(first_line(path))
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")


def _append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` to the open file ``fd`` and sync it; on a failure (a full disk) cut
    the file back to its size before, so that it stays whole lines. Raises ``OSError``."""
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise


def _drop_torn_tail(fd: int) -> None:
    """Cut a final partial line (a write killed mid-way) off the journal open in ``fd``,
    so that appending after it keeps every line whole. Such a record never finished, so
    the write it announced never began (write-ahead)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = max(0, size - MAX_LINE - 1)
    tail = os.pread(fd, size - start, start)
    cut = tail.rfind(b"\n")
    os.ftruncate(fd, start + cut + 1 if cut >= 0 else start)


def registry_path() -> Path:
    """genre-tagger's registry of the roots each journal's scans were given:
    ``journals_dir()/../journal-roots.jsonl``."""
    return journals_dir().parent / "journal-roots.jsonl"


def _register(journal_id: str, journal_path: Path, roots: list[str]) -> None:
    """Record in the registry that the journal ``journal_id`` covers ``roots``; ``OSError`` if it cannot."""
    registry = registry_path()
    registry.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(registry, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        _append_whole(fd, _line({"journal": journal_id, "path": str(journal_path), "roots": roots, "time": _now()}))
    finally:
        os.close(fd)


def _registered_roots(journal_ids: set[str]) -> dict[str, set[str]]:
    """The roots the registry holds for each of ``journal_ids`` (lines it cannot read add none)."""
    found: dict[str, set[str]] = {journal_id: set() for journal_id in journal_ids}
    try:
        for _, line in _bounded_lines(registry_path()):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict) and record.get("journal") in found and _texts(record.get("roots")):
                found[record["journal"]].update(record["roots"])
    except (OSError, JournalError):  # no registry (or none past a damaged line): fewer roots confirmed
        pass
    return found


def _under(path: str, roots: set[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies under one (one set look-up per folder level)."""
    while True:
        if path in roots:
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


class Journal:
    """An append-only JSON-lines journal of genre writes; use as a context manager.

    ``with Journal(path, roots=[library]) as journal: tag_file(journal, track, "Jazz")``

    ``roots`` are the folders (or files) the writes belong to, which undo checks each
    entry against; without them, each file's own folder is recorded as it is written.
    """

    def __init__(self, path: str | os.PathLike[str], roots: Iterable[str | os.PathLike[str]] | None = None) -> None:
        self.path = Path(path)
        self.roots = None if roots is None else [os.path.abspath(root) for root in roots]
        self.id = ""
        self._covered: set[str] = set()
        self._fd: int | None = None

    def open(self) -> Journal:
        """Open the journal for appending: created with its folder when missing, refused
        (:class:`JournalError`) when the file is not a journal of ours or cannot be written."""
        if self._fd is not None:
            return self
        created = not self.path.exists()
        if not created and not self.path.is_file():
            raise JournalError(f"{self.path}: is not a regular file (a FIFO, a device or a folder): not written")
        header = {} if created else _first_record(self.path) or {}
        if not created and (header.get("journal") != FORMAT or not isinstance(header.get("id"), str)):
            raise JournalError(f"{self.path}: exists and is not a genre-tagger journal of this version; "
                               "choose another file")
        self.id = uuid.uuid4().hex if created else header["id"]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_free_space(self.path.parent)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            if created:
                _append_whole(self._fd, _line({"journal": FORMAT, "id": self.id, "time": _now()}))
                fsync(self.path.parent, directory=True)  # make the new journal's name durable too
            else:
                _drop_torn_tail(self._fd)
            if self.roots:
                self._add_roots(self.roots)
        except OSError as error:
            self.close()
            raise JournalError(f"{self.path}: cannot be written ({error.strerror or error})") from None
        return self

    def close(self) -> None:
        """Close the journal (records are already on disk)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _add_roots(self, roots: list[str]) -> None:
        """Register ``roots``, then record them (a roots line of ours is always registered);
        ``OSError`` when either cannot be written."""
        _register(self.id, self.path, roots)
        _append_whole(self._fd, _line({"roots": roots, "time": _now()}))
        self._covered.update(roots)

    def _append(self, line: bytes) -> None:
        try:
            _append_whole(self._fd, line)
        except OSError as error:
            raise JournalError(f"{self.path}: cannot be written ({error.strerror or error})") from None

    def record(self, path: str | os.PathLike[str], old: Sequence[str], new: Sequence[str],
               before: FileStamp | None = None) -> None:
        """Append one entry and flush it to disk; call it *before* writing the file.

        Raises :class:`TagError` (nothing recorded: do not write the file) when the entry
        would be longer than :data:`MAX_LINE`, which undo could not read back."""
        self.open()
        path = os.path.abspath(path)
        # the file the write reaches (through symbolic links), which undo must reach again
        entry = {"time": _now(), "path": path, "real": os.path.realpath(path), "old": list(old), "new": list(new)}
        if before is not None:
            entry["stamp"] = [before.size, before.mtime_ns]
        line = _line(entry)
        if len(line) > MAX_LINE:
            raise TagError(f"{path}: not written: its genres take {len(line)} bytes, more than a journal line "
                           f"holds ({MAX_LINE}), so undo could not give them back")
        if not _under(path, self._covered):
            try:
                self._add_roots([os.path.dirname(path)])
            except OSError as error:
                raise JournalError(f"{self.path}: cannot record the folder of {path} ({error.strerror or error})") from None
        self._append(line)

    def done(self, path: str | os.PathLike[str], after: FileStamp) -> None:
        """Record that the write of ``path`` finished, with the file's stamp after it."""
        self._append(_line({"done": os.path.abspath(path), "stamp": [after.size, after.mtime_ns]}))


def check_distinct(**outputs: Path | None) -> None:
    """:class:`JournalError` when two of a scan's ``outputs`` (by option name: ``journal``,
    ``report``, ``json``) are one file: the same resolved path, or the same file by a hard
    link; before anything is written, so neither destroys the other."""
    named = {name: Path(path) for name, path in outputs.items() if path is not None and str(path) != "-"}
    seen: list[tuple[str, Path]] = []
    for name, path in named.items():
        for other_name, other in seen:
            same = os.path.realpath(path) == os.path.realpath(other)
            if not same and path.exists() and other.exists():
                same = os.path.samefile(path, other)
            if same:
                raise JournalError(f"--{other_name} and --{name} name the same file ({path}); give each its own")
        seen.append((name, path))


def journals_dir() -> Path:
    """Where journals go by default: ``$XDG_DATA_HOME/genre-tagger/journals``
    (``$XDG_DATA_HOME`` defaults to ``~/.local/share``)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "genre-tagger" / "journals"


def default_path() -> Path:
    """A new journal file: ``journals_dir()/YYYYmmdd-HHMMSS-<microseconds>-<pid>.jsonl``."""
    now = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return journals_dir() / f"{now}-{os.getpid()}.jsonl"


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
    existing: Sequence[str] | None = None,
) -> list[str] | None:
    """Tag ``path`` with ``new_genres`` under ``policy``, journalling the change first.

    Reads the existing genres, plans with :func:`~genre_tagger.tagging.tags.plan_genres`,
    records the change in ``journal``, then writes it with
    :func:`~genre_tagger.tagging.tags.write_genres` and records that it is done. Returns
    the genres written, or ``None`` when there was nothing to do. Raises
    :class:`~genre_tagger.tagging.tags.TagError` (the file untouched) as ``write_genres``
    does or when the journal could not hold its genres (:meth:`Journal.record`), and
    :class:`~genre_tagger.tagging.tags.UnsafeTagError` for a tag that cannot be
    rewritten without losing other metadata, in a dry run too. Without ``expect``, the
    file's stamp when its genres were read is used, so a file changed in between is not
    written.

    With ``dry_run`` nothing is journalled or written (``journal`` may be ``None``):
    the return value says what would be written; ``existing``, the genres the caller has
    just read from the file, then spares reading them again (a cached dry run reads each
    file's tags once). A write always reads them itself, next to the write, for the journal.
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
    if existing is None or not dry_run:
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


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Entry:
    """One write of a journal: its line, the file, where it led, its genres before and after."""

    line: int
    path: str
    real: str | None
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass
class _Parsed:
    """Everything undo and ``--list`` need of one journal, every line checked."""

    path: Path
    id: str
    started: str
    roots: list[str] = field(default_factory=list)  # in order, each once
    entries: list[_Entry] = field(default_factory=list)
    finished: int = 0
    undone: list[str] = field(default_factory=list)  # when an undo --write of it ran, since its last write
    warnings: list[str] = field(default_factory=list)


def _texts(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_stamp(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(type(v) is int and v >= 0 for v in value)


def _bounded_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(number, line)`` of a regular file of at most :data:`MAX_JOURNAL` bytes, each line
    at most :data:`MAX_LINE` bytes (:class:`JournalError` naming the first that is not)."""
    if not path.is_file():
        raise JournalError(f"{path}: not a regular file")
    if path.stat().st_size > MAX_JOURNAL:
        raise JournalError(f"{path}: larger than {MAX_JOURNAL} bytes, more than a journal of ours holds")
    with open(path, "rb") as f:
        for number, line in enumerate(iter(lambda: f.readline(MAX_LINE + 1), b""), 1):
            if len(line) > MAX_LINE:
                raise JournalError(f"{path} line {number}: longer than {MAX_LINE} bytes; nothing was undone")
            yield number, line


def _record_problem(record: dict) -> str | None:
    """Why ``record`` (not the header) is none of the records a journal of ours writes, else ``None``."""
    if "roots" in record:
        roots = record["roots"]
        ok = _texts(roots) and all(os.path.isabs(root) and os.path.normpath(root) == root for root in roots)
        return None if ok else "its roots are not a list of absolute, normalised paths"
    if "done" in record:
        return None if isinstance(record["done"], str) and _is_stamp(record.get("stamp")) else "a malformed done record"
    if "undone" in record:
        return None if isinstance(record["undone"], str) else "a malformed undone record"
    if "path" not in record:
        return "not a record of a genre-tagger journal"
    if not isinstance(record["path"], str) or not isinstance(record.get("real", ""), str):
        return "its path is not text"
    if not _texts(record.get("old")) or not _texts(record.get("new")):
        return "its old or new genres are not a list of text"
    if "stamp" in record and not _is_stamp(record["stamp"]):
        return "a malformed stamp"
    return None


def _decode(line: bytes) -> dict | str:
    """The JSON object on ``line``, or why it is not one."""
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except RecursionError:
        return "nested too deeply"
    except ValueError as error:
        return f"not JSON ({error})"
    return record if isinstance(record, dict) else "not a JSON object"


def _parse(journal_path: str | os.PathLike[str]) -> _Parsed:
    """Read and check every line of a journal: :class:`JournalError` naming the first line
    that a journal of ours could not hold. A final partial line (a write cut short) is
    left out with a warning."""
    path = Path(journal_path)
    lines = _bounded_lines(path)
    try:
        number, line = next(lines)
    except StopIteration:
        number, line = 1, b""
    header = _decode(line)
    if not isinstance(header, dict) or header.get("journal") != FORMAT or not isinstance(header.get("id"), str):
        old = isinstance(header, dict) and str(header.get("journal", "")).startswith("genre-tagger/")
        raise JournalError(f"{path}: not a genre-tagger journal of this version (its first line is not a {FORMAT} "
                           "header" + ("; journals of older versions cannot be undone" if old else "") +
                           "); nothing was undone")
    parsed = _Parsed(path, header["id"], str(header.get("time", "")))
    roots: dict[str, None] = {}
    for number, line in lines:
        if not line.strip():
            continue
        record = _decode(line)
        problem = record if isinstance(record, str) else _record_problem(record)
        if problem and not line.endswith(b"\n"):
            parsed.warnings.append(f"{path} line {number}: a partial line (a write cut short), ignored")
            break
        if problem:
            raise JournalError(f"{path} line {number}: {problem}; nothing was undone")
        if "roots" in record:
            roots.update(dict.fromkeys(record["roots"]))
        elif "done" in record:
            parsed.finished += 1
        elif "undone" in record:
            parsed.undone.append(record["undone"])
        else:
            parsed.undone.clear()  # a journal reused after its undo has writes not undone yet
            parsed.entries.append(_Entry(number, record["path"], record.get("real"), tuple(record["old"]),
                                         tuple(record["new"])))
    parsed.roots = list(roots)
    return parsed


def _confirm_roots(parsed: _Parsed, registered: set[str]) -> None:
    """:class:`JournalError` unless genre-tagger's registry holds every root the journal names."""
    unconfirmed = [root for root in parsed.roots if root not in registered]
    if unconfirmed:
        raise JournalError(f"{parsed.path}: its roots {unconfirmed!r} are not in genre-tagger's registry of the "
                           f"folders its scans were given ({registry_path()}): a journal made or edited by hand? "
                           "nothing was undone")


@dataclass(frozen=True)
class JournalInfo:
    """One journal of :func:`list_journals`: when it was started, the folders its scans
    were given, how many writes it records and how many finished, when it was undone,
    or why it cannot be read."""

    path: Path
    started: str
    roots: tuple[str, ...]
    writes: int
    finished: int
    undone: tuple[str, ...] = ()
    problem: str = ""


def list_journals(folder: Path | None = None) -> list[JournalInfo]:
    """The journals of ours in ``folder`` (default :func:`journals_dir`), newest first."""
    folder = journals_dir() if folder is None else folder
    found = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        first = _first_record(path)
        if not first or not str(first.get("journal", "")).startswith("genre-tagger/"):
            continue
        try:  # an older version's journal is listed with the reason it cannot be undone
            parsed = _parse(path)
        except (JournalError, OSError) as error:
            found.append(JournalInfo(path, str(first.get("time", "")), (), 0, 0, problem=str(error)))
            continue
        found.append(JournalInfo(path, parsed.started, tuple(parsed.roots), len(parsed.entries), parsed.finished,
                                 tuple(parsed.undone)))
    return sorted(found, key=lambda info: (info.started, info.path.name), reverse=True)


def journals_to_undo(last: int | None = None, since: str | None = None) -> list[Path]:
    """The journals of the default folder that ``undo --last N`` or ``undo --since NAME``
    means, newest first: the ``last`` newest not undone yet, or every one not undone yet
    from the journal named ``since`` (a name ``--list`` shows, or its path) to the newest."""
    journals = [info for info in list_journals() if not info.problem]
    if since is not None:
        names = [info.path.name for info in journals]
        wanted = Path(since).name
        if wanted not in names:
            raise JournalError(f"{since}: not a journal of {journals_dir()} (see genre-tagger undo --list)")
        journals = journals[: names.index(wanted) + 1]
    chosen = [info.path for info in journals if not info.undone]
    if last is not None:
        chosen = chosen[:last]
    if not chosen:
        raise JournalError(f"no journal to undo in {journals_dir()} (every one is undone, or there is none)")
    return chosen


# --------------------------------------------------------------------------- undo

UndoStatus = Literal["restored", "would restore", "unchanged", "changed", "error", "warning"]


@dataclass(frozen=True)
class UndoResult:
    """What undo did with one journal entry.

    ``status``: ``restored`` (old genres put back; ``would restore`` in a dry run),
    ``unchanged`` (the file already held the old genres, e.g. the journalled write never
    happened), ``changed`` (the file's genres are neither those written nor those
    replaced: left alone), ``error`` (``message`` says why: the file is gone, or the
    entry is refused) or ``warning`` (about the journal, not a file: a final partial line).
    """

    path: str
    status: UndoStatus
    message: str
    old: tuple[str, ...] = ()
    new: tuple[str, ...] = ()


def _refused(entry: _Entry, roots: set[str], real_roots: set[str]) -> str | None:
    """Why undo refuses ``entry``, or ``None``: a file its journal's (registered) roots do not cover."""
    path = entry.path
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        return "refused: its path is not an absolute, normalised path"
    if not _under(path, roots):
        return "refused: the file lies outside every folder this journal recorded as scanned"
    if entry.real is not None and os.path.realpath(path) != entry.real:
        return "refused: its path now leads to another file than the one written (a symbolic link changed)"
    if entry.real is None and not _under(os.path.realpath(path), real_roots):
        return "refused: its path leads outside every folder this journal recorded as scanned"
    return None


def undo(journal_path: str | os.PathLike[str], *, dry_run: bool = False, cache: Cache | None = None) -> list[UndoResult]:
    """Undo the writes of one journal, newest first; one result per entry (see :func:`undo_chain`)."""
    ((_, results),) = undo_chain([Path(journal_path)], dry_run=dry_run, cache=cache)
    return results


def undo_chain(journal_paths: Sequence[Path], *, dry_run: bool = False,
               cache: Cache | None = None) -> list[tuple[Path, list[UndoResult]]]:
    """Undo the writes of ``journal_paths`` (give them newest first), each journal's newest
    first; one result per entry, per journal.

    Every line of every journal is read and checked first: :class:`JournalError` (nothing
    written) for a file that is not a journal of ours, a malformed line, or roots that
    genre-tagger's registry does not hold for it. Then a file gets its old genres back (its
    genre tag removed when it had none), exactly as they were read, when it holds exactly
    the genres written, whatever its stamp; so an older journal's writes are undone after
    a newer one's. With ``dry_run`` nothing is written: what would be restored is reported
    as ``would restore``, and later entries see the file as restored. After an undo with
    writes, the journal records it (``undone``, shown by ``--list``). With ``cache``, what
    it holds for a restored file follows the file's new stamp (only its tags changed), so
    the next scan does not analyse it again.
    """
    journals = [_parse(path) for path in journal_paths]
    registered = _registered_roots({parsed.id for parsed in journals})
    for parsed in journals:
        _confirm_roots(parsed, registered[parsed.id])
    now: dict[str, tuple[str, ...]] = {}  # genres each file holds after this undo's restores (a dry run's too)
    done = []
    for parsed in journals:
        roots = set(parsed.roots)
        real_roots = {os.path.realpath(root) for root in roots}
        results = [UndoResult(path=str(parsed.path), status="warning", message=w) for w in parsed.warnings]
        results += [_undo_entry(entry, roots, real_roots, now, dry_run, cache) for entry in reversed(parsed.entries)]
        if not dry_run:
            results += _mark_undone(parsed.path, sum(r.status == "restored" for r in results))
        done.append((parsed.path, results))
    return done


def _mark_undone(journal_path: Path, restored: int) -> list[UndoResult]:
    """Record in the journal that it was undone; a warning result when that cannot be written."""
    try:
        fd = os.open(journal_path, os.O_RDWR | os.O_APPEND)
        try:
            _drop_torn_tail(fd)
            _append_whole(fd, _line({"undone": _now(), "restored": restored}))
        finally:
            os.close(fd)
    except OSError as error:
        return [UndoResult(path=str(journal_path), status="warning",
                           message=f"undone, but the journal cannot record it ({error.strerror or error})")]
    return []


def _undo_entry(entry: _Entry, roots: set[str], real_roots: set[str], now: dict[str, tuple[str, ...]],
                dry_run: bool, cache: Cache | None) -> UndoResult:
    path, old, new = entry.path, entry.old, entry.new
    done = {"path": path, "old": old, "new": new}
    refused = _refused(entry, roots, real_roots)
    if refused:
        return UndoResult(status="error", message=refused, **done)
    try:
        before = stamp(path)
        current = now[path] if path in now else tuple(read_genres(path))
        if current == old:
            return UndoResult(status="unchanged", message="already holds the old genres", **done)
        if current != new:
            return UndoResult(status="changed", message=f"its genres are now {list(current)!r}, not those written: "
                                                        "changed since, left alone", **done)
        now[path] = old
        if dry_run:
            return UndoResult(status="would restore", message=f"would restore {list(old)!r}", **done)
        write_genres(path, old, id3_join=None, expect=before, verbatim=True)
        after = stamp(path)
        if cache is not None:
            cache.restamp((path, before.size, before.mtime_ns), (path, after.size, after.mtime_ns))
        return UndoResult(status="restored", message=f"restored {list(old)!r}" if old else "genre removed", **done)
    except (TagError, OSError, ValueError) as e:
        now.pop(path, None)
        return UndoResult(status="error", message=str(e), **done)
