"""The user's own genre labels: a CSV of ``path, genre`` rows, and genre-name normalisation.

Map of this module:

- :func:`normalise_genre` -- ``"Hip-Hop "``, ``"hip hop"``, ``"HipHop"`` -> ``"hiphop"``
- :data:`BUILTIN_ALIASES`, :func:`build_aliases`, :func:`parse_aliases` / :func:`read_aliases`
  -- synonyms mapped onto one label (``"R&B"`` -> ``"rnb"``), extendable by the user
- :func:`parse_labels` / :func:`read_labels` -- the labels CSV -> :class:`Labels`

The CSV needs a path column and a genre column, found by their header names
(:data:`PATH_HEADERS`, :data:`GENRE_HEADERS`, any case, spaces and punctuation ignored:
``"File Name"`` is ``filename``); other columns are ignored. A file without a header is
accepted when it has exactly two columns and the first row names an audio file in one of
them. The delimiter (comma, semicolon or tab) is detected, a UTF-8 byte-order mark is
skipped, and quoted cells may hold delimiters. Relative paths are relative to the CSV's
folder, or to ``root`` when given.

Everything here is pure apart from :func:`read_labels` / :func:`read_aliases`, which only
read the file; errors are :class:`LabelsError` with a one-line message naming the file.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from genre_tagger.pipeline.audio import AUDIO_EXTENSIONS

#: Header names of the path column, in order of preference (compared normalised).
PATH_HEADERS: tuple[str, ...] = ("path", "filepath", "file", "filename", "location")
#: Header names of the genre column, in order of preference (compared normalised).
GENRE_HEADERS: tuple[str, ...] = ("genre", "label", "class", "tag")
DELIMITERS: tuple[str, ...] = (",", ";", "\t")

#: Synonyms that are spelling variants of one name, nothing more: "&" is read as "and"
#: before punctuation is stripped, so "R&B", "R and B", "RnB" and "Rhythm & Blues" all
#: become ``rnb``, and "Drum & Bass", "Drum'n'Bass", "DnB" become ``drumandbass``.
#: Deliberately absent: mappings that are a judgement rather than a spelling, such as
#: rap -> hiphop or heavy metal -> metal; add them with ``--alias`` (``rap=hiphop``).
BUILTIN_ALIASES: dict[str, str] = {
    "randb": "rnb",
    "rhythmandblues": "rnb",
    "dnb": "drumandbass",
    "drumnbass": "drumandbass",
}


class LabelsError(ValueError):
    """A labels or alias file that cannot be read; the message is one line naming the file."""


def _fold(text: str) -> str:
    """Case-folded, accents and compatibility forms removed, ``&`` read as ``and``,
    everything but letters and digits dropped."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    decomposed = decomposed.replace("&", "and")
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def _canonical(text: str) -> str:
    """:func:`_fold` repeated to its fixed point (one pass almost always is), so that
    normalising is idempotent even for exotic Unicode."""
    for _ in range(8):
        folded = _fold(text)
        if folded == text:
            break
        text = folded
    return text


def normalise_genre(name: str, aliases: Mapping[str, str] | None = None) -> str:
    """The canonical label of a genre name.

    Case, accents, spaces, punctuation (unicode dashes included) are ignored, and the
    result is looked up in ``aliases`` (default :data:`BUILTIN_ALIASES`; pass the map
    from :func:`build_aliases` to include the user's), whose keys and values must be
    canonical (:func:`build_aliases` makes them so)::

        >>> normalise_genre("Hip–Hop "), normalise_genre("R&B"), normalise_genre("Électro")
        ('hiphop', 'rnb', 'electro')

    Idempotent: ``normalise_genre(normalise_genre(x)) == normalise_genre(x)``.
    """
    key = _canonical(name)
    return (BUILTIN_ALIASES if aliases is None else aliases).get(key, key)


def build_aliases(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """:data:`BUILTIN_ALIASES` extended (and overridden) by ``extra`` ``{name: label}``.

    Keys and values are canonicalised and chains are followed (``a=b`` and ``b=c``
    give ``a -> c``), so every value is a fixed point and normalising stays idempotent.
    Raises :class:`ValueError` for an empty name or label, or a cycle.
    """
    raw = dict(BUILTIN_ALIASES)
    for name, label in (extra or {}).items():
        key, value = _canonical(name), _canonical(label)
        if not key or not value:
            raise ValueError(f"alias {name!r}={label!r}: name and label must contain letters or digits")
        raw[key] = value
    resolved: dict[str, str] = {}
    for key in raw:
        value, seen = raw[key], {key}
        while value in raw and raw[value] != value:
            if value in seen:
                raise ValueError(f"aliases form a cycle through {value!r}")
            seen.add(value)
            value = raw[value]
        if value != key:
            resolved[key] = value
    return resolved


def parse_aliases(text: str, source: str = "<aliases>") -> dict[str, str]:
    """User aliases ``{name: label}`` from ``name=label`` lines or a two-column CSV.

    Blank lines and lines starting with ``#`` are skipped; a CSV's first row is taken for
    a header and skipped when its second cell is a genre header name (``label``, ...).
    """
    aliases: dict[str, str] = {}
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    for index, (number, line) in enumerate(lines):
        if "=" in line:
            name, _, label = line.partition("=")
        else:
            delimiter = max(DELIMITERS, key=line.count)
            cells = next(csv.reader([line], delimiter=delimiter))
            if len(cells) != 2:
                raise LabelsError(f"{source}:{number}: expected name=label or a name{delimiter}label row, got {line.strip()!r}")
            name, label = cells
            if index == 0 and _canonical(label) in GENRE_HEADERS:
                continue
        name, label = name.strip().strip('"'), label.strip().strip('"')
        if not _canonical(name) or not _canonical(label):
            raise LabelsError(f"{source}:{number}: expected name=label, got {line.strip()!r}")
        aliases[name] = label
    return aliases


def read_aliases(path: str | Path) -> dict[str, str]:
    """:func:`build_aliases` of the user's alias file (``name=label`` lines or a CSV)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise LabelsError(f"{path}: cannot read the alias file ({error})") from None
    try:
        return build_aliases(parse_aliases(text, str(path)))
    except ValueError as error:
        raise LabelsError(f"{path}: {error}") from None


@dataclass(frozen=True)
class LabelledTrack:
    """One usable row: the file (absolute or resolved against the root), its canonical
    label, the genre as written, and the row's line number in the CSV."""

    path: Path
    label: str
    raw_label: str
    line: int


@dataclass
class Labels:
    """A parsed labels file.

    ``tracks`` in file order, one per distinct path; ``skipped`` one-line messages for
    rows that were not used (empty cells, repeated paths); ``path_column`` and
    ``genre_column`` are header names, or column numbers ``"1"``/``"2"`` without a header.
    """

    source: Path
    tracks: list[LabelledTrack]
    path_column: str
    genre_column: str
    delimiter: str
    skipped: list[str] = field(default_factory=list)

    def distribution(self) -> dict[str, int]:
        """``{label: n_tracks}``, most frequent first (ties by name)."""
        return counts(track.label for track in self.tracks)


def counts(labels: Iterable[str]) -> dict[str, int]:
    """``{label: n}``, most frequent first, ties by name."""
    found: dict[str, int] = {}
    for label in labels:
        found[label] = found.get(label, 0) + 1
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


def _looks_like_audio(cell: str) -> bool:
    return Path(cell.strip()).suffix.lower() in AUDIO_EXTENSIONS


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    folded = [_canonical(cell) for cell in header]
    for name in names:
        if name in folded:
            return folded.index(name)
    return None


def _read_rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of every row."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    return [(reader.line_num, row) for row in reader]


def _layout(text: str, source: Path) -> tuple[str, list[tuple[int, list[str]]], int, int, bool]:
    """``(delimiter, rows, path_column, genre_column, has_header)`` of a labels CSV.

    A delimiter wins when, split by it, the first row holds both a path and a genre
    header; failing that, when the first row is two cells of which one names an audio
    file (a header-less file). Otherwise :class:`LabelsError`.
    """
    first_line = text.splitlines()[0]
    for delimiter in DELIMITERS:
        header = next(csv.reader([first_line], delimiter=delimiter), [])
        path_column, genre_column = _find_column(header, PATH_HEADERS), _find_column(header, GENRE_HEADERS)
        if path_column is not None and genre_column is not None:
            return delimiter, _read_rows(text, delimiter), path_column, genre_column, True
    for delimiter in DELIMITERS:
        first = next(csv.reader([first_line], delimiter=delimiter), [])
        if len(first) == 2 and _looks_like_audio(first[0]) != _looks_like_audio(first[1]):
            path_column = 0 if _looks_like_audio(first[0]) else 1
            return delimiter, _read_rows(text, delimiter), path_column, 1 - path_column, False
    header = max((next(csv.reader([first_line], delimiter=d), []) for d in DELIMITERS), key=len)
    found = ", ".join(repr(cell) for cell in header) or "nothing"
    raise LabelsError(
        f"{source}: no path and genre columns found (expected header names {'/'.join(PATH_HEADERS)} and "
        f"{'/'.join(GENRE_HEADERS)}, or two columns, file and genre, without a header); the first row has {found}"
    )


def _home_expanded(cell: str) -> Path:
    """``~/...`` means the user's home folder; any other name (``~draft.mp3``, ``~bob/x``)
    is taken as written, as a file name may start with a tilde."""
    if cell == "~" or cell.startswith("~/"):
        return Path(cell).expanduser()
    return Path(cell)


def parse_labels(
    text: str, source: str | Path, root: str | Path | None = None, aliases: Mapping[str, str] | None = None
) -> Labels:
    """Parse the text of a labels CSV (see the module docstring).

    ``source`` is the CSV's path: it names the file in messages, and relative paths are
    resolved against its folder unless ``root`` is given. Labels are canonicalised with
    :func:`normalise_genre` and ``aliases``. Rows with an empty path or genre, and repeats
    of a path, are listed in :attr:`Labels.skipped`; a file with no usable row is an error.
    """
    source = Path(source)
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise LabelsError(f"{source}: the labels file is empty")
    delimiter, rows, path_column, genre_column, has_header = _layout(text, source)
    base = Path(root).expanduser() if root is not None else source.parent
    tracks: list[LabelledTrack] = []
    skipped: list[str] = []
    labelled_on: dict[Path, int] = {}
    for index, (line, row) in enumerate(rows):
        if index == 0 and has_header:
            continue
        if not any(cell.strip() for cell in row):
            continue
        cell_path = row[path_column].strip() if path_column < len(row) else ""
        raw_label = row[genre_column].strip() if genre_column < len(row) else ""
        label = normalise_genre(raw_label, aliases)
        if not cell_path or not label:
            skipped.append(f"{source}:{line}: {'no path' if not cell_path else 'no genre'}, row skipped")
            continue
        path = _home_expanded(cell_path)
        path = path if path.is_absolute() else base / path
        if path in labelled_on:
            skipped.append(f"{source}:{line}: {path} already labelled on line {labelled_on[path]}, row skipped")
            continue
        labelled_on[path] = line
        tracks.append(LabelledTrack(path, label, raw_label, line))
    if not tracks:
        raise LabelsError(f"{source}: no labelled files (every row is empty or lacks a path or a genre)")
    header = rows[0][1] if has_header else None
    return Labels(
        source=source,
        tracks=tracks,
        path_column=header[path_column].strip() if header else str(path_column + 1),
        genre_column=header[genre_column].strip() if header else str(genre_column + 1),
        delimiter=delimiter,
        skipped=skipped,
    )


def read_labels(path: str | Path, root: str | Path | None = None, aliases: Mapping[str, str] | None = None) -> Labels:
    """Read and :func:`parse_labels` a labels CSV (UTF-8, with or without a BOM)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise LabelsError(f"{path}: not UTF-8 text; save the labels file as UTF-8 CSV") from None
    except OSError as error:
        raise LabelsError(f"{path}: cannot read the labels file ({error.strerror})") from None
    return parse_labels(text, path, root, aliases)
