"""Finding labelled clips: a GTZAN-style folder, a labels CSV, a user's tagged library,
and split lists."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from genre_tagger.pipeline.audio import AUDIO_EXTENSIONS


@dataclass(frozen=True)
class Clip:
    """One labelled clip: its file, its genre, a unique id (``name``, else the file name
    without its extension) and, for a user's tracks, its ``album``: the tracks of one
    album are kept in one fold of every cross-validation, as a GTZAN clip's segments are."""

    path: Path
    genre: str
    name: str | None = None
    album: str | None = None

    @property
    def clip_id(self) -> str:
        """``<genre>.<stem>``-like identifier, independent of the extension (``blues.00012``)."""
        return self.name or self.path.stem


@dataclass
class OwnLabels:
    """A user's own labelled tracks: the ``clips`` (genres normalised as ``evaluate``
    normalises them), the spelling the user gives each genre most often (``names``:
    ``{"jazzblues": "Jazz & Blues"}``), how many files had no genre (``untagged``) and
    the files that were skipped, one line each."""

    clips: list[Clip]
    names: dict[str, str]
    untagged: int = 0
    skipped: list[str] = field(default_factory=list)


def _spellings(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """``{label: the raw name seen most often for it}`` (ties: the first seen)."""
    seen: dict[str, Counter] = {}
    for label, raw in pairs:
        seen.setdefault(label, Counter())[raw.strip()] += 1
    return {label: counts.most_common(1)[0][0] for label, counts in seen.items()}


def _relative_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def album_key(path: Path, album: str | None) -> str:
    """What keeps a user's tracks together in cross-validation: the album tag ``album`` of
    ``path`` (by name alone: two albums of one name are kept together, which is only
    stricter, and the two discs of one album in two folders are never split), else the folder."""
    return f"album:{album.casefold()}" if album else f"folder:{path.parent}"


def _tagged_album(path: Path) -> str | None:
    """The album tag of ``path``; ``None`` without one or when its tags cannot be read."""
    from genre_tagger.tagging.tags import TagError, read_album

    try:
        return read_album(path)
    except TagError:
        return None


def labelled_clips(labels_path: str | Path, aliases: Mapping[str, str] | None = None,
                   albums: bool = False) -> OwnLabels:
    """The clips of a labels CSV (``evaluate``'s format), each named by its path relative
    to the CSV's folder; with ``albums``, each of its :func:`album_key`."""
    from genre_tagger.evaluation.labels import read_labels

    labels = read_labels(labels_path, aliases=aliases)
    root = Path(labels_path).parent
    clips, skipped, spelled = [], list(labels.skipped), []
    for track in labels.tracks:
        if not track.path.is_file():
            skipped.append(f"{track.path}: no such file (line {track.line})")
            continue
        clips.append(Clip(track.path, track.label, _relative_name(track.path, root),
                          album_key(track.path, _tagged_album(track.path)) if albums else None))
        spelled.append((track.label, track.raw_label))
    return OwnLabels(clips, _spellings(spelled), 0, skipped)


def tagged_clips(root: str | Path, aliases: Mapping[str, str] | None = None) -> OwnLabels:
    """The tracks of a library that have a genre tag, labelled with its first value
    (normalised as ``evaluate`` does; mutagen already reads ID3v1's numbered genres such as
    ``(17)`` as their names) and of their album tag's album (else their folder's)."""
    from genre_tagger.evaluation.labels import normalise_genre
    from genre_tagger.tagging.library import walk
    from genre_tagger.tagging.tags import TagError, read_genres_and_album

    root = Path(root)
    skipped: list[str] = []
    clips, spelled, untagged = [], [], 0
    for path in walk([root], skipped.append):
        try:
            genres, album = read_genres_and_album(path)
        except TagError as error:
            skipped.append(str(error))
            continue
        raw = genres[0].strip() if genres else ""
        label = normalise_genre(raw, aliases) if raw else ""
        if not label:
            untagged += 1
            continue
        clips.append(Clip(path, label, _relative_name(path, root), album_key(path, album)))
        spelled.append((label, raw))
    return OwnLabels(clips, _spellings(spelled), untagged, skipped)


def find_clips(root: str | Path, on_duplicate=None) -> list[Clip]:
    """Every audio file at ``<genre>/<file>`` anywhere under ``root``, sorted by path.

    Works for the original GTZAN ``genres/<genre>/*.au`` layout, Kaggle's
    ``genres_original/<genre>/*.wav`` and our ``genres/<genre>/*.ogg``: the genre is the
    name of the folder that holds the file. Hidden files and folders are ignored.

    Clip ids (file names without extension) must be unique, since all segments of a
    clip are kept on one side of every split: a second file with the same id (the same
    clip in another format) is left out and passed to ``on_duplicate(clip, first)``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    clips = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file() and len(relative.parts) >= 2:
            clips.append(Clip(path, path.parent.name.lower()))
    unique: dict[str, Clip] = {}
    for clip in clips:
        if clip.clip_id in unique:
            if on_duplicate:
                on_duplicate(clip, unique[clip.clip_id])
        else:
            unique[clip.clip_id] = clip
    return list(unique.values())


def read_split(path: str | Path) -> set[str]:
    """Clip ids (``genre.000NN``) listed in a split file of lines ``genre/genre.000NN.wav``."""
    ids = set()
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ids.add(Path(line).stem)
    return ids


def read_split_dir(directory: str | Path) -> dict[str, set[str]]:
    """The artist-filtered split of Kereliuk, Sturm & Larsen: ``{"train"|"valid"|"test": ids}``."""
    directory = Path(directory)
    splits = {}
    for name in ("train", "valid", "test"):
        candidates = [directory / f"{name}_filtered.txt", directory / f"{name}.txt"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"{directory}: no {name}_filtered.txt or {name}.txt split list")
        splits[name] = read_split(found)
    return splits
