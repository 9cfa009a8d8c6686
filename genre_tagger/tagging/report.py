"""The CSV report of a scan: one row per file.

The report never lands on a file the user owns: :func:`check_target` refuses, before
any analysis, a folder that is missing or read-only and an existing file that is not a
report of ours (unless forced); :func:`write_csv` replaces the report atomically, so a
half-written one never replaces an old one. Cells that a spreadsheet would run as a
formula (a file named ``=cmd|' /C calc'!A0.mp3``) are neutralised the way OWASP
recommends for CSV injection: a leading ``'``; :func:`read_csv` takes it off again.
"""

from __future__ import annotations

import base64
import csv
import json
import os
from pathlib import Path
from typing import Callable, Iterable

from genre_tagger.pipeline.files import check_free_space, first_line
from genre_tagger.tagging.scan import TrackResult

#: the report's columns: ``class`` is the model's class (``hiphop``) of ``genre`` (``Hip-Hop``),
#: ``current_genre`` the genres the file held, ``genres_written`` what it holds after the
#: write (or would: a dry run), several joined by ``; ``
COLUMNS = ["path", "genre", "class", "confidence", "top3", "segments", "model", "duration_s", "status",
           "reason", "current_genre", "genres_written", "error"]
_FIELDS = {"class": "label", "current_genre": "current", "genres_written": "written"}  # column -> TrackResult field
LIST_SEPARATOR = "; "
#: first characters that make a spreadsheet read a cell as a formula
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ReportError(Exception):
    """The report cannot be written where asked; the message is one line naming it."""


def is_report(path: Path) -> bool:
    """Whether ``path`` holds a report of ours: a CSV whose header row is a report's."""
    header = next(csv.reader([first_line(path)]), [])
    return header[:2] == COLUMNS[:2] and "status" in header


def is_json_lines(path: Path) -> bool:
    """Whether ``path`` holds ``scan --json`` output of ours (or nothing yet)."""
    line = first_line(path)
    if not line.strip():
        return path.stat().st_size == 0
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and {"path", "status"} <= set(record)


def check_target(path: str | Path, force: bool = False, ours: Callable[[Path], bool] = is_report,
                 what: str = "report") -> None:
    """Raise :class:`ReportError` unless a ``what`` (a report; JSON Lines with ``ours``
    :func:`is_json_lines`) can be written at ``path``: its folder exists and takes new
    files, and ``path`` is new or ``ours`` (any regular file with ``force``; a FIFO or a
    device never). Nothing is left behind."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ReportError(f"{path}: its folder {folder} does not exist")
    if path.is_dir():
        raise ReportError(f"{path}: is a folder")
    if path.exists() and not path.is_file():
        raise ReportError(f"{path}: is not a regular file (a FIFO or a device): not written")
    if path.exists() and not force and not ours(path):
        raise ReportError(f"{path}: exists and is not a genre-tagger {what}; choose another name, "
                          "or pass --force to overwrite it")
    temporary = _temporary(path)
    try:
        check_free_space(folder)
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(",".join(COLUMNS) + "\n")
    except OSError as error:
        raise ReportError(f"{path}: cannot be written ({error.strerror or error})") from None
    finally:
        try:
            os.unlink(temporary)
        except OSError:
            pass


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def neutralise(cell: str) -> str:
    """``cell`` as a spreadsheet shows it without running it: a leading ``'`` before a
    formula's first character (and before a leading ``'``, so that it reads back)."""
    return "'" + cell if cell.startswith(_FORMULA_START + ("'",)) else cell


def _restored(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START + ("'",)) else cell


def write_csv(results: Iterable[TrackResult], path: str | Path) -> None:
    """Write the report atomically (a half-written report never replaces an old one, and
    no temporary file stays behind); :class:`ReportError` when it cannot be written."""
    path = Path(path)
    temporary = _temporary(path)
    try:
        with open(temporary, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            for result in results:
                writer.writerow({column: neutralise(_cell(result, column)) for column in COLUMNS})
        os.replace(temporary, path)
    except OSError as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise ReportError(f"{path}: cannot be written ({error.strerror or error})") from None


def _cell(result: TrackResult, column: str) -> str:
    value = getattr(result, _FIELDS.get(column, column))
    if isinstance(value, list):
        return LIST_SEPARATOR.join(value)
    return "" if value is None else str(value)


def open_json_lines(path: str | Path):
    """``scan --json FILE``'s output, opened for writing (checked by :func:`check_target`
    first); an ``OSError`` when it cannot be."""
    return open(path, "w", encoding="utf-8")


class JsonLinesOutput:
    """``scan --json``'s lines, written and flushed one by one as files finish, to a file
    (checked by :func:`check_target` first) or to ``stream`` (standard output).

    A write that fails (a full disk) does not end the scan: :meth:`write` returns the one
    line saying so (naming the file and the cause) the first time, and then writes no
    more; :attr:`error` keeps it. :meth:`close` never raises: what a failed write left
    in the buffer is dropped (the file ends at its last flushed line)."""

    def __init__(self, path: str | Path, stream=None):
        self.path = Path(path)
        self.error: str | None = None
        self._handle = stream if stream is not None else open_json_lines(path)
        self._owned = stream is None

    def write(self, result: TrackResult) -> str | None:
        """Write ``result``'s line; the error line, the first time one cannot be written."""
        if self.error is not None:
            return None
        try:
            self._handle.write(json_line(result) + "\n")
            self._handle.flush()
        except OSError as error:
            self.error = f"{self.path}: cannot be written ({error.strerror or error}): no more JSON lines"
            return self.error
        return None

    def close(self) -> str | None:
        """Close the file; the error line, when closing it failed and no write had."""
        if not self._owned:
            return None
        try:
            self._handle.close()  # closes the file even when flushing fails
        except OSError as error:
            if self.error is None:
                self.error = f"{self.path}: cannot be written ({error.strerror or error}): its last lines are lost"
                return self.error
        return None


def json_line(result: TrackResult) -> str:
    """One line of ``scan --json``: the result as a JSON object (lists as lists), valid
    UTF-8 whatever the file's name: a name that is not UTF-8 (its bytes as
    ``os.fsdecode`` gives them, with surrogate escapes) is ``path`` with U+FFFD for each
    byte that is not, and ``path_bytes``, the name's bytes in base64, holds it exactly."""
    row = {key: _valid_utf8(value) for key, value in result.as_row().items()}
    raw = os.fsencode(result.path)
    if row["path"].encode("utf-8") != raw:
        row["path_bytes"] = base64.b64encode(raw).decode("ascii")
    return json.dumps(row, ensure_ascii=False)


def _valid_utf8(value):
    """``value`` (a string, list of strings or anything else) with surrogate escapes as U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, list):
        return [_valid_utf8(item) for item in value]
    return value


def read_csv(path: str | Path) -> list[TrackResult]:
    """Read a report written by :func:`write_csv` back into results."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        rows = [{key: _restored(value or "") for key, value in row.items()} for row in csv.DictReader(handle)]
    results = []
    for row in rows:
        results.append(
            TrackResult(
                path=row["path"],
                genre=row["genre"],
                label=row.get("class", ""),
                confidence=float(row["confidence"]) if row["confidence"] else None,
                top3=row["top3"],
                segments=int(row["segments"]) if row["segments"] else None,
                model=row["model"],
                duration_s=float(row["duration_s"]) if row["duration_s"] else None,
                status=row["status"],
                current=_listed(row.get("current_genre", "")),
                written=_listed(row.get("genres_written", "")),
                error=row["error"],
                reason=row.get("reason", ""),  # absent from an older version's report
            )
        )
    return results


def _listed(cell: str) -> list[str]:
    return cell.split(LIST_SEPARATOR) if cell else []
