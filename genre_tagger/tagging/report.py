"""The CSV report of a scan: one row per file."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable

from genre_tagger.tagging.scan import TrackResult

COLUMNS = ["path", "genre", "confidence", "top3", "segments", "model", "duration_s", "status", "error"]


def write_csv(results: Iterable[TrackResult], path: str | Path) -> None:
    """Write the report atomically (a half-written report never replaces an old one)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for result in results:
            row = result.as_row()
            writer.writerow({column: "" if row[column] is None else row[column] for column in COLUMNS})
    os.replace(temporary, path)


def read_csv(path: str | Path) -> list[TrackResult]:
    """Read a report written by :func:`write_csv` back into results."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        rows = list(csv.DictReader(handle))
    results = []
    for row in rows:
        results.append(
            TrackResult(
                path=row["path"],
                genre=row["genre"],
                confidence=float(row["confidence"]) if row["confidence"] else None,
                top3=row["top3"],
                segments=int(row["segments"]) if row["segments"] else None,
                model=row["model"],
                duration_s=float(row["duration_s"]) if row["duration_s"] else None,
                status=row["status"],
                error=row["error"],
            )
        )
    return results
