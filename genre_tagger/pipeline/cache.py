"""A small SQLite cache of per-file features and scan results.

Entries are keyed by the file's path, size and modification time (and what produced
them: feature extractor and version, or model checksum), so an edited file is analysed
again and an unchanged one never is. SQLite in WAL mode lets two scans share the cache
and survives a process killed mid-write (a transaction either landed or did not).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS features (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    extractor TEXT NOT NULL, selection TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (path, extractor, selection)
);
CREATE TABLE IF NOT EXISTS results (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    model TEXT NOT NULL, settings TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (path, model, settings)
);
"""


def default_path() -> Path:
    """``$GENRE_TAGGER_CACHE``, else ``$XDG_CACHE_HOME/genre-tagger/cache.sqlite``."""
    if os.environ.get("GENRE_TAGGER_CACHE"):
        return Path(os.environ["GENRE_TAGGER_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "genre-tagger" / "cache.sqlite"


def model_key(name: str, checksum: str) -> str:
    """How results of one exact model are told apart: ``<name>@<bundle checksum>``."""
    return f"{name}@{checksum}"


def features_key(name: str, version: str) -> str:
    """How features of one extractor version are told apart: ``<name>/<version>``."""
    return f"{name}/{version}"


def file_key(path: str | Path) -> tuple[str, int, int]:
    """``(absolute path, size, mtime_ns)`` of an existing file. The path is normalised
    (``os.path.abspath``: ``a/../b`` is ``b``), so one file reached by two spellings of
    its folder has one key."""
    path = os.path.abspath(path)
    st = os.stat(path)
    return path, st.st_size, st.st_mtime_ns


def _db_path(path: str) -> str | bytes:
    """A file's path as stored in the database.

    SQLite text must be valid UTF-8, but a POSIX file name is bytes and may not be
    (Python holds such a name as a str with surrogate escapes, see :func:`os.fsdecode`).
    Such a path is stored as its raw bytes (a BLOB), which never equals any TEXT value,
    so it cannot collide with another file's entry; every other path stays TEXT.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _bind(key: tuple[str, int, int]) -> tuple[str | bytes, int, int]:
    return (_db_path(key[0]), *key[1:])


def _to_blob(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _from_blob(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


# How long to wait for another process holding the database (a second scan).
BUSY_TIMEOUT_S = 60.0


def _enable_wal(db: sqlite3.Connection) -> None:
    """Switch ``db`` to WAL mode, waiting for another process that holds it.

    Changing the journal mode needs an exclusive lock, and SQLite answers "database is
    locked" at once, without waiting through the busy timeout, while another connection
    has the file open in the middle of the same switch (two scans started together on a
    new cache file). So retry for up to :data:`BUSY_TIMEOUT_S`.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            message = str(error).lower()
            if ("locked" not in message and "busy" not in message) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class CacheError(Exception):
    """The cache database cannot be opened (damaged, not a database, not writable)."""


class Cache:
    """Features and results per file. ``Cache(None)`` is a cache that keeps nothing."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._db = None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                _enable_wal(self._db)
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(SCHEMA)
            except (sqlite3.DatabaseError, OSError) as error:
                raise CacheError(
                    f"{self.path}: cannot use this cache database ({error}); delete it, or pass --no-cache"
                ) from None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_features(self, key: tuple[str, int, int], extractor: str, selection: str) -> np.ndarray | None:
        """Cached feature rows of a file, or ``None`` when absent or stale."""
        if self._db is None:
            return None
        row = self._db.execute(
            "SELECT data FROM features WHERE path=? AND size=? AND mtime_ns=? AND extractor=? AND selection=?",
            (*_bind(key), extractor, selection),
        ).fetchone()
        return None if row is None else _from_blob(row[0])

    def _write(self, statement: str, values: tuple) -> None:
        """Run an insert; a cache that can no longer be written (a full disk) is said once
        and then left alone: the work goes on, only not cached."""
        if self._db is None:
            return
        try:
            self._db.execute(statement, values)
        except sqlite3.Error as error:
            log.warning("%s: the cache cannot be written (%s): results are no longer cached in this run", self.path, error)
            self._db.close()
            self._db = None

    def put_features(self, key: tuple[str, int, int], extractor: str, selection: str, features: np.ndarray) -> None:
        self._write("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?)",
                    (*_bind(key), extractor, selection, _to_blob(features)))

    def get_result(self, key: tuple[str, int, int], model: str, settings: str) -> dict[str, Any] | None:
        if self._db is None:
            return None
        row = self._db.execute(
            "SELECT result FROM results WHERE path=? AND size=? AND mtime_ns=? AND model=? AND settings=?",
            (*_bind(key), model, settings),
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def put_result(self, key: tuple[str, int, int], model: str, settings: str, result: dict[str, Any]) -> None:
        self._write("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)",
                    (*_bind(key), model, settings, json.dumps(result)))

    def restamp(self, old: tuple[str, int, int], new: tuple[str, int, int]) -> None:
        """A file's tags changed, not its audio (a tag write, an undo): its entries under the
        ``old`` key hold for the ``new`` one, every model's and extractor's alike. A
        prediction's own record of the stamp (``"stamp"``) follows."""
        if self._db is None or old == new:
            return
        rows = self._db.execute("SELECT model, settings, result FROM results WHERE path=? AND size=? AND mtime_ns=?",
                                _bind(old)).fetchall()
        for model, settings, result in rows:
            data = json.loads(result)
            if isinstance(data, dict) and "stamp" in data:
                data["stamp"] = list(new[1:])
            self.put_result(new, model, settings, data)
        features = self._db.execute("SELECT extractor, selection, data FROM features WHERE path=? AND size=? AND mtime_ns=?",
                                    _bind(old)).fetchall()
        for extractor, selection, data in features:
            self._write("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?)", (*_bind(new), extractor, selection, data))
