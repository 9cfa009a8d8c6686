"""What a user sees of a scan stays the same through refactoring: a small library, scanned
with fixed models, gives exactly the report stored in ``tests/data/golden_scan_report.csv``.

The library is generated (deterministic signals, every format, a silent, a too-short and
a broken file) and the models are ``tiny_models`` (retrained by the real command on
generated audio). When a change is meant to alter what a scan reports, regenerate the
file with ``GENRE_TAGGER_UPDATE_GOLDEN=1 pytest tests/test_golden_scan.py`` and say why
in the commit.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import audiofactory
from genre_tagger.cli import main

GOLDEN = Path(__file__).parent / "data" / "golden_scan_report.csv"


def _library(root: Path) -> Path:
    signals = {
        "Artist A/Album/01 chords.mp3": audiofactory.music_like(9, seed=1),
        "Artist A/Album/02 chords.flac": audiofactory.music_like(12, seed=2),
        "Artist A/Album/03 tone.ogg": audiofactory.tone(7, freq=330),
        "Artist B/Ünïcode/04 noise.opus": audiofactory.noise(7, amplitude=0.3, seed=4),
        "Artist B/Ünïcode/05 clicks.m4a": (audiofactory.clicks(8, bpm=150) + audiofactory.noise(8, amplitude=0.2)).clip(-1, 1),
        "Artist B/06 chords.wav": audiofactory.music_like(7, seed=6),
        "Artist B/07 tone.aiff": audiofactory.tone(10, freq=220) + audiofactory.tone(10, freq=440, amplitude=0.1),
        "Artist C/08 silence.wav": np.zeros(22050 * 7, np.float32),
        "Artist C/09 short.wav": audiofactory.tone(1.5),
    }
    for name, signal in signals.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        audiofactory.write(path, signal)
    (root / "Artist C" / "10 broken.mp3").write_bytes(b"ID3 this is not audio at all" * 40)
    return root


def _rows(report: Path, root: Path) -> list[dict]:
    with open(report, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["path"] = Path(row["path"]).relative_to(root).as_posix()
        row["error"] = row["error"].replace(str(root) + os.sep, "")
    return rows


@pytest.mark.parametrize("model, vote", [("knn", "majority"), ("ensemble", "majority"), ("knn", "soft")])
def test_a_scan_reports_exactly_what_it_reported_before(model, vote, tiny_models, tmp_path):
    root = _library(tmp_path / "Music")
    report = tmp_path / "report.csv"
    done = CliRunner().invoke(main, ["scan", str(root), "--models-dir", str(tiny_models), "--model", model,
                                     "--vote", vote, "--report", str(report), "--cache", str(tmp_path / "cache.sqlite")])
    assert done.exit_code == 1, done.output  # the short and the broken file failed
    rows = [dict(row, scan_model=model) for row in _rows(report, root)]
    golden = GOLDEN.with_name(f"{GOLDEN.stem}_{model}_{vote}.csv")
    if os.environ.get("GENRE_TAGGER_UPDATE_GOLDEN") == "1":
        with open(golden, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    with open(golden, newline="", encoding="utf-8") as handle:
        expected = list(csv.DictReader(handle))
    assert rows == expected
