"""Finding labelled clips: a GTZAN-style folder, a labels CSV, and split lists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genre_tagger.pipeline.audio import AUDIO_EXTENSIONS


@dataclass(frozen=True)
class Clip:
    """One labelled clip: its file, its genre and a unique id (``name``, else the file
    name without its extension)."""

    path: Path
    genre: str
    name: str | None = None

    @property
    def clip_id(self) -> str:
        """``<genre>.<stem>``-like identifier, independent of the extension (``blues.00012``)."""
        return self.name or self.path.stem


def labelled_clips(labels_path: str | Path) -> tuple[list[Clip], list[str]]:
    """The clips of a labels CSV (``evaluate``'s format, genre names normalised), each
    named by its path relative to the CSV's folder, and the rows that were skipped."""
    from genre_tagger.evaluation.labels import read_labels

    labels = read_labels(labels_path)
    root = Path(labels_path).parent
    clips, skipped = [], list(labels.skipped)
    for track in labels.tracks:
        if not track.path.is_file():
            skipped.append(f"{track.path}: no such file (line {track.line})")
            continue
        try:
            name = track.path.relative_to(root).as_posix()
        except ValueError:
            name = track.path.as_posix()
        clips.append(Clip(track.path, track.label, name))
    return clips, skipped


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
