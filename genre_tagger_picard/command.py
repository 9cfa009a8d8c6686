"""The plugin's side of the ``genre-tagger`` command: find it, check its version, run
``genre-tagger scan FILES --json -`` and turn each JSON line into an :class:`Outcome`.

Nothing here imports Picard or genre-tagger: a packaged Picard (Windows, macOS,
Flatpak) cannot import our package, so the plugin only ever talks to the command, and
this module is plain Python that the tests also run without Picard.

What the plugin decides with genre-tagger's verdicts, in the words ``scan`` and the
beets plugin use:

- ``tagged``: the genres (display names, as ``scan`` tags them) go to Picard's ``genre``
  after the policy (:func:`plan_genres`, the rule of ``scan --policy``), the confidence
  to ``~genre_confidence``;
- ``kept``: the track has a genre already and the policy keeps it;
- ``uncertain``: genre-tagger will not say (below the threshold, not music, unlike every
  genre it knows, silent): nothing changes, the reason goes to the log;
- ``failed``: the file could not be analysed (damaged, gone, not audio): the reason goes
  to the log, the other files go on.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

#: the name of the command on PATH
COMMAND = "genre-tagger"
#: the oldest genre-tagger whose ``scan --json -`` has what the plugin reads (``status``, ``genres``, ``error``)
MIN_VERSION = (0, 1, 0)
#: the statuses, as ``scan`` and the beets plugin name them
TAGGED, KEPT, UNCERTAIN, FAILED = "tagged", "kept", "uncertain", "failed"
POLICIES = ("keep", "overwrite", "append")
#: the fields of a ``scan --json`` line that the plugin needs
REQUIRED_FIELDS = ("path", "status", "genres", "confidence", "error")
#: how long ``genre-tagger --version`` may take (a cold start imports numpy and friends)
VERSION_TIMEOUT_S = 120
INSTALL_HINT = ("install it (pip install . in genre-tagger's clone, or pipx install .) or set its path in "
                "Options > Plugins > genre-tagger")
UPGRADE_HINT = "reinstall it from an up-to-date clone (pip install --upgrade .)"


class CommandError(Exception):
    """genre-tagger cannot be used: missing, too old, not genre-tagger, or it stopped
    before answering. The message is one line, for Picard's log and status bar."""


@dataclass
class Settings:
    """The options page's settings."""

    command: str = ""  # blank: genre-tagger on PATH
    models_dir: str = ""  # blank: genre-tagger's own default (its pretrained models or $GENRE_TAGGER_MODELS)
    model: str = ""  # blank: the default model
    min_confidence: float = 0.0  # 0: the model's own threshold (its model card)
    max_genres: int = 1  # scan --genres N
    policy: str = "keep"  # what to do with a track that has a genre in Picard already


@dataclass
class Outcome:
    """What genre-tagger said of one file."""

    path: str
    status: str  # TAGGED (genres to set), UNCERTAIN or FAILED; KEPT once the policy is applied
    genres: list[str] = field(default_factory=list)
    confidence: float | None = None
    note: str = ""  # why the file is not tagged: genre-tagger's own words


# ---------------------------------------------------------------- finding the command


def find_command(configured: str = "", which: Callable[[str], str | None] = shutil.which) -> str:
    """The command to run: ``configured`` (a path, or a name looked up on PATH) when
    set, else ``genre-tagger`` on PATH, else in ``~/.local/bin`` (where ``pip install
    --user`` and ``pipx`` put it, often not on the PATH a desktop application gets).
    :class:`CommandError` saying where it looked when none is found."""
    configured = os.path.expanduser(configured.strip())
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        found = which(configured) if os.sep not in configured else None
        if found:
            return found
        raise CommandError(f"genre-tagger not found at {configured} (the path set in Options > Plugins > "
                           "genre-tagger): install it there or correct the path")
    found = which(COMMAND)
    if found:
        return found
    for folder in (Path.home() / ".local" / "bin",):
        candidate = folder / (COMMAND + (".exe" if os.name == "nt" else ""))
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise CommandError(f"genre-tagger not found on PATH: {INSTALL_HINT}")


def parse_version(text: str) -> tuple[int, ...] | None:
    """``(0, 1, 0)`` from ``genre-tagger, version 0.1.0``; ``None`` when it is not that."""
    match = re.search(r"genre-tagger, version (\d+(?:\.\d+)*)", text)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _shown(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def check_version(command: str, timeout: float = VERSION_TIMEOUT_S) -> str:
    """``command``'s version (``0.1.0``), checked: :class:`CommandError` when it cannot be
    run, is not genre-tagger, or is older than :data:`MIN_VERSION`."""
    try:
        done = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=timeout,
                              errors="replace", **_hidden_window())
    except subprocess.TimeoutExpired:
        raise CommandError(f"{command} --version did not answer in {timeout:.0f} s") from None
    except OSError as error:
        raise CommandError(f"{command} cannot be run ({error.strerror or error}): {INSTALL_HINT}") from None
    version = parse_version(done.stdout + done.stderr)
    if version is None:
        said = (done.stdout + done.stderr).strip().splitlines()
        raise CommandError(f"{command} is not genre-tagger (its --version said {said[0] if said else 'nothing'!r}): "
                           f"{INSTALL_HINT}")
    if version < MIN_VERSION:
        raise CommandError(f"{command} is genre-tagger {_shown(version)}, too old: this plugin needs "
                           f"{_shown(MIN_VERSION)} or later: {UPGRADE_HINT}")
    return _shown(version)


def _hidden_window() -> dict:
    """No console window flashing up on Windows for each run."""
    if os.name == "nt":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}


# ---------------------------------------------------------------- running a scan


def scan_argv(command: str, paths: Sequence[str], settings: Settings) -> list[str]:
    """``genre-tagger scan PATHS --json -`` with the options page's settings. A dry run
    (no ``--write``): Picard does the writing, when the user saves. ``--policy overwrite``
    makes genre-tagger give its genres whatever the file holds: the policy is applied to
    Picard's metadata instead (:func:`plan_genres`)."""
    argv = [command, "scan", "--json", "-", "--quiet", "--policy", "overwrite", "--genres", str(settings.max_genres)]
    if settings.min_confidence > 0:
        argv += ["--min-confidence", f"{settings.min_confidence:g}"]
    if settings.models_dir.strip():
        argv += ["--models-dir", os.path.expanduser(settings.models_dir.strip())]
    if settings.model.strip():
        argv += ["--model", settings.model.strip()]
    return argv + ["--", *paths]


def outcome_of(record: dict) -> Outcome:
    """One ``scan --json`` line as an :class:`Outcome`. ``reason`` (when genre-tagger has
    it) says why a file is uncertain; older lines say it in ``error`` alone."""
    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        raise CommandError(f"genre-tagger's JSON lines lack {', '.join(missing)}: it is too old for this plugin: "
                           f"{UPGRADE_HINT}")
    path = record_path(record)
    status = record["status"]
    confidence = record.get("confidence")
    note = _note(path, record.get("error") or "", record.get("reason") or "")
    if status in ("tagged", "would tag") and record.get("genres"):
        return Outcome(path, TAGGED, [str(g) for g in record["genres"]], confidence)
    if status == UNCERTAIN:
        return Outcome(path, UNCERTAIN, [], confidence, note or "uncertain: not tagged")
    if status == "interrupted":
        return Outcome(path, FAILED, [], None, note or "not scanned: the scan was stopped before it")
    return Outcome(path, FAILED, [], None, note or f"genre-tagger said {status!r} and gave no genre")


def _note(path: str, error: str, reason: str) -> str:
    """genre-tagger's words on a file, without the leading ``PATH: `` (the log line names it)."""
    prefix = f"{path}: "
    note = error[len(prefix):] if error.startswith(prefix) else error
    if reason and reason not in note:
        note = f"{note} ({reason})" if note else reason
    return note.replace("\n", " ").replace("\r", " ")


def record_path(record: dict) -> str:
    """The file's name as it was given: ``path_bytes`` (base64) holds a name that is not UTF-8."""
    if record.get("path_bytes"):
        return os.fsdecode(base64.b64decode(record["path_bytes"]))
    return str(record["path"])


def _skipped(stderr: str) -> dict[str, str]:
    """``skipped PATH: why`` lines of scan's standard error, by path."""
    found = {}
    for line in stderr.splitlines():
        if line.startswith("skipped "):
            path, sep, why = line[len("skipped "):].rpartition(": ")
            if sep:
                found[path] = why
    return found


def _last_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no message"])[-1]


def run_scan(command: str, paths: Sequence[str], settings: Settings, on_outcome: Callable[[Outcome], None],
             started: Callable[[subprocess.Popen], None] | None = None) -> list[Outcome]:
    """Run one scan of ``paths`` and call ``on_outcome`` for each file as genre-tagger
    finishes it (from this thread: the caller moves it to Picard's). Every path gets an
    outcome: a file that no longer exists, or that genre-tagger skipped or never answered
    for, is ``failed`` with the reason; the others are not held up by it. A run that
    stops before answering at all (a bad option, a model that cannot be loaded) is a
    :class:`CommandError`."""
    outcomes: dict[str, Outcome] = {}

    def record(outcome: Outcome) -> None:
        outcomes[outcome.path] = outcome
        on_outcome(outcome)

    present = []
    for path in paths:
        if os.path.isfile(path):
            present.append(path)
        else:  # scan refuses the whole command for one missing path
            record(Outcome(path, FAILED, note="no longer exists (moved or deleted since Picard loaded it)"))
    if not present:
        return list(outcomes.values())
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr:
        process = subprocess.Popen(scan_argv(command, present, settings), stdout=subprocess.PIPE, stderr=stderr,
                                   stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
                                   **_hidden_window())
        if started is not None:
            started(process)
        try:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    outcome = outcome_of(json.loads(line))
                except ValueError:
                    continue
                if outcome.path in present:
                    record(outcome)
        finally:
            code = process.wait()
        stderr.seek(0)
        errors = stderr.read()
    unanswered = [path for path in present if path not in outcomes]
    if unanswered and len(unanswered) == len(present) and code not in (0, 1):
        raise CommandError(f"genre-tagger stopped (exit code {code}): {_last_error(errors)}")
    skipped = _skipped(errors)
    for path in unanswered:
        why = skipped.get(path) or f"genre-tagger gave no answer for it (exit code {code}: {_last_error(errors)})"
        record(Outcome(path, FAILED, note=why))
    return [outcomes[path] for path in paths]


# ---------------------------------------------------------------- the policy


def _present(genre: str, existing: Iterable[str]) -> bool:
    wanted = genre.strip().casefold()
    return any(wanted == part.strip().casefold() for value in existing for part in value.split(";"))


def plan_genres(existing: Sequence[str], new: Sequence[str], policy: str) -> list[str] | None:
    """The genres to set given the ``existing`` ones, or ``None`` to leave them, by the
    rule of ``scan --policy`` (genre_tagger.tagging.tags.plan_genres; a test checks they
    agree): ``keep`` sets ``new`` only where there is no genre yet, ``overwrite`` replaces
    (``None`` when it is exactly that already), ``append`` adds each genre not present
    (case-insensitively) after the existing ones."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    wanted: list[str] = []
    for genre in new:
        genre = genre.strip()
        if genre and not _present(genre, wanted):
            wanted.append(genre)
    if not wanted:
        raise ValueError("no genre given")
    existing = [value for value in existing if value.strip()]
    if policy == "keep":
        return None if existing else wanted
    if policy == "overwrite":
        return None if existing == wanted else wanted
    missing = [genre for genre in wanted if not _present(genre, existing)]
    return existing + missing if missing else None


# ---------------------------------------------------------------- words


def percent(confidence: float | None) -> str:
    return "" if confidence is None else f" ({confidence:.0%})"


def summary_line(counts: dict[str, int]) -> str:
    """``genre-tagger: 3 tagged, 1 uncertain, 1 failed (see the log)``."""
    order = (TAGGED, KEPT, UNCERTAIN, FAILED)
    said = ", ".join(f"{counts[status]} {status}" for status in order if counts.get(status))
    tail = " (each said in the log)" if counts.get(UNCERTAIN) or counts.get(FAILED) or counts.get(KEPT) else ""
    return f"genre-tagger: {said or 'no files'}{tail}"
