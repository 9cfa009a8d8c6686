"""Reading and writing the genre tag, and nothing else.

The files this module writes are often someone's only copy of their music, so the
rules are strict:

* **Only the genre changes.** Every other tag (title, artist, cover art, ReplayGain,
  unknown frames, ...) is kept. ID3 tags are loaded without mutagen's version
  translation and saved in the version they already have (see *ID3 versions* below).
* **Audio data is never rewritten.** mutagen only rewrites the tag region; the audio
  parameters (sample rate, channels, length) of the result are checked as well.
* **The original is never modified in place.** The file is copied to a hidden
  temporary file beside it (``.NAME.XXXXXXXX.genre-tagger.tmp``, see :func:`temporary_prefix`), the tag is written to
  the copy, the copy is flushed to disk and read back, and only when it reads back the
  expected genres is it renamed over the original with :func:`os.replace` (atomic on
  POSIX), after which the directory is fsync'ed. A crash at any point leaves either the
  untouched original or the complete new file, at worst plus a stray temporary file.
  On any error the temporary file is removed and the original is left as it was.
* **Read-only means read-only.** A file or directory without any write permission bit
  is refused with ``TagError("...: permission denied ...")``, *even for root*, who would
  otherwise be allowed to replace it (the superuser ignores permission bits, but a
  write-protected file is a clear statement of intent, and ``rm`` asks about it too).
* **Stale analyses are refused.** :func:`write_genres` takes the :class:`FileStamp`
  (size and modification time) the file had when it was analysed; if the file has
  changed since, nothing is written. The stamp is checked again just before the rename,
  so a file changed while its copy was being tagged is not overwritten either.

Metadata of the file: the permission bits, the owner and group (where the process may
set them) and extended attributes (ACLs among them, where the file system allows) are
copied to the new file. Symbolic links are followed: the file they point to is
replaced, the link stays. A file with several hard links gets a new inode, so its other
names keep the old content (nothing is lost, but the links are split).

**Modification time.** The write updates the file's modification time, deliberately, as
Picard and beets do: the content did change, and backup and sync tools (rsync's
quick check, most backup programs) decide what to copy from size and mtime. Keeping the
old mtime would hide the change from them, most of all when the new tag fits in the
existing padding and the size stays the same. A cache keyed on :class:`FileStamp`
should store :func:`stamp` of the file after the write.

Conventions per format:

============  ===============================================================
MP3           ID3v2 ``TCON``: one value per genre (ID3v2.4), or in ID3v2.3 the
              values joined with ``id3_join`` (default ``"; "``). An existing
              ID3v1 tag keeps every byte except its genre byte.
FLAC, Ogg     Vorbis comment ``GENRE``, one entry per genre, written where the
              first existing ``GENRE`` entry was.
Opus          as Ogg Vorbis.
MP4/M4A       ``©gen`` (an old numeric ``gnre`` atom becomes ``©gen``).
WAV, AIFF     an ID3v2 chunk with ``TCON``, as MP3.
AU            cannot hold tags: :class:`TagError`.
============  ===============================================================

ID3 versions: an existing ID3v2.3 or ID3v2.4 tag is written back in its own version,
whatever ``id3_version`` asks, because converting loses data (mutagen's v2.4 -> v2.3
conversion drops ``RVA2``, ``TSOP``/``TSOA``/``TSOT`` and other v2.4 frames, and frames
mutagen does not know are only kept when the version stays the same). ``id3_version``
applies to files without an ID3v2 tag, and to ID3v2.2 tags, which mutagen cannot write.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import struct
import stat as stat_module
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import mutagen
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from genre_tagger.pipeline.files import NotRegularFile, open_regular
from genre_tagger.tagging import id3, mp4, vorbis

DEFAULT_GENRE_NAMES: dict[str, str] = {
    "blues": "Blues",
    "classical": "Classical",
    "country": "Country",
    "disco": "Disco",
    "hiphop": "Hip-Hop",
    "jazz": "Jazz",
    "metal": "Metal",
    "pop": "Pop",
    "reggae": "Reggae",
    "rock": "Rock",
}

Policy = Literal["keep", "overwrite", "append"]
POLICIES: tuple[str, ...] = ("keep", "overwrite", "append")

TEMP_SUFFIX = ".genre-tagger.tmp"
#: the longest file name most file systems take (ext4, XFS, Btrfs, APFS: 255 bytes)
NAME_MAX = 255
#: tempfile.mkstemp's random part, between the prefix and TEMP_SUFFIX
TEMP_RANDOM = 8


def temporary_prefix(name: str) -> str:
    """What the temporary copy of the file ``name`` is called up to its random part:
    ``.NAME.``, hidden; for a name too long for that to fit :data:`NAME_MAX` (from 229
    bytes on), ``.SHORTENED~HASH.``: its first bytes, then 8 hex digits of its SHA-1, so
    that the copy stays recognisable and each name has a prefix of its own (see
    :class:`genre_tagger.tagging.library.StaleTemporaries`)."""
    raw = os.fsencode(name)
    if len(raw) + 2 + TEMP_RANDOM + len(TEMP_SUFFIX) <= NAME_MAX:
        return f".{name}."
    digest = hashlib.sha1(raw).hexdigest()[:8]
    keep = NAME_MAX - (2 + 1 + len(digest) + TEMP_RANDOM + len(TEMP_SUFFIX))
    return f".{os.fsdecode(raw[:keep])}~{digest}."
MP4_GENRE = "\xa9gen"


class TagError(Exception):
    """Reading or writing a tag failed; the message is one line naming the file and cause.

    Whenever this is raised by :func:`write_genres`, the original file is untouched.
    """


class UnsafeTagError(TagError):
    """The file's tag could not be rewritten without losing some of its other metadata
    (a frame of a broken size, a damaged comment block), so it is left as it is; the
    message names the file and what is wrong with its tag."""


@dataclass(frozen=True)
class FileStamp:
    """What a file looked like when it was analysed: its size and modification time."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        """The stamp of an ``os.stat`` result."""
        return cls(st.st_size, st.st_mtime_ns)


def stamp(path: str | os.PathLike[str]) -> FileStamp:
    """The current :class:`FileStamp` of ``path`` (symbolic links followed)."""
    return FileStamp.of(os.stat(path))


# --------------------------------------------------------------------------- formats

_ID3_KINDS = (MP3, WAVE, AIFF)
_VORBIS_KINDS = (FLAC, OggVorbis, OggOpus, OggFLAC)

# extension -> format family; the file's first bytes must agree (see _identify)
_FAMILIES: dict[str, str] = {
    ".mp3": "mp3", ".mp2": "mp3",
    ".flac": "flac",
    ".ogg": "ogg", ".oga": "ogg", ".opus": "ogg",
    ".m4a": "mp4", ".m4b": "mp4", ".mp4": "mp4",
    ".wav": "wav", ".wave": "wav",
    ".aif": "aiff", ".aiff": "aiff", ".aifc": "aiff",
}  # fmt: skip
_TAGLESS = {".au", ".snd"}
# signatures of containers that must never be mistaken for MP3 (which has no magic)
_NOT_MP3 = (b"RIFF", b"FORM", b"fLaC", b"OggS", b".snd", b"MAC ", b"wvpk", b"\x30\x26\xb2\x75")


def _identify(path: Path, name: str) -> type[mutagen.FileType]:
    """The mutagen class for ``path``, from its extension checked against its content."""
    ext = path.suffix.lower()
    if ext in _TAGLESS:
        raise TagError(f"{name}: this format cannot hold tags")
    family = _FAMILIES.get(ext)
    if family is None:
        raise TagError(f"{name}: not a supported audio file type ({ext or 'no extension'})")
    with _opened(path, name, "rb") as f:
        header = f.read(128)
    found: type[mutagen.FileType] | None = None
    if family == "mp3":
        found = MP3 if len(header) >= 4 and not header.startswith(_NOT_MP3) and header[4:8] != b"ftyp" else None
    elif family == "flac":
        found = FLAC if header.startswith((b"fLaC", b"ID3")) else None
    elif family == "ogg" and header.startswith(b"OggS"):
        for marker, kind in ((b"OpusHead", OggOpus), (b"\x01vorbis", OggVorbis), (b"\x7fFLAC", OggFLAC)):
            if marker in header:
                found = kind
                break
    elif family == "mp4":
        found = MP4 if header[4:8] == b"ftyp" else None
    elif family == "wav":
        found = WAVE if header[:4] == b"RIFF" and header[8:12] == b"WAVE" else None
    elif family == "aiff":
        found = AIFF if header[:4] == b"FORM" and header[8:12] in (b"AIFF", b"AIFC") else None
    if found is None:
        raise TagError(f"{name}: content is not the {family.upper()} audio its extension says")
    return found


def _load(cls: type[mutagen.FileType], path: Path, name: str) -> mutagen.FileType:
    """Load ``path`` with mutagen, for reading: ID3 tags are translated (so ID3v2.2 works)
    and an MP3's ID3v1 tag fills in what its ID3v2 tag lacks (WAV and AIFF never look for
    ID3v1: the "TAG" bytes could be audio samples). Whatever mutagen raises on a damaged
    file is one :class:`TagError`."""
    kwargs = {"load_v1": cls is MP3} if cls in _ID3_KINDS else {}
    with _opened(path, name, "rb") as file:
        try:
            return cls(file, **kwargs)
        except mutagen.MutagenError as e:
            raise TagError(f"{name}: cannot read tags: {_mutagen_cause(e)}") from e
        except OSError as e:
            raise TagError(f"{name}: {_cause(e)}") from e
        except Exception as e:  # mutagen meets damaged sizes with struct.error, IndexError, ...
            raise TagError(f"{name}: cannot read tags: they are damaged ({type(e).__name__}: {e})") from e


def _genres_of(audio: mutagen.FileType) -> list[str]:
    """The genre values held by loaded ``audio`` (blank values left out)."""
    tags = audio.tags
    if tags is None:
        return []
    if isinstance(audio, _ID3_KINDS):
        values = [g for frame in tags.getall("TCON") for g in frame.genres]
    elif isinstance(audio, _VORBIS_KINDS):
        values = [v for k, v in tags if k.lower() == "genre"]
    else:
        values = list(tags.get(MP4_GENRE, []))
    return [str(v) for v in values if str(v).strip()]


def read_genres(path: str | os.PathLike[str]) -> list[str]:
    """The genres tagged in ``path``, in order; an empty list when there are none.

    Values are returned as stored: an ID3v2.3 tag written with a join string reads back
    as one value (``["Rock; Pop"]``). Raises :class:`TagError` when the file cannot be
    read or its format cannot hold tags.
    """
    return _genres_of(_load_file(path))


def read_album(path: str | os.PathLike[str]) -> str | None:
    """The album ``path`` is tagged with (ID3 ``TALB``, Vorbis ``ALBUM``, MP4 ``©alb``),
    ``None`` without one; :class:`TagError` as :func:`read_genres`."""
    return _album_of(_load_file(path))


def read_genres_and_album(path: str | os.PathLike[str]) -> tuple[list[str], str | None]:
    """:func:`read_genres` and :func:`read_album` of ``path``, its tags read once."""
    audio = _load_file(path)
    return _genres_of(audio), _album_of(audio)


def _load_file(path: str | os.PathLike[str]) -> mutagen.FileType:
    name = os.fspath(path)
    target = Path(os.path.realpath(path))
    return _load(_identify(target, name), target, name)


def _album_of(audio: mutagen.FileType) -> str | None:
    tags = audio.tags
    if tags is None:
        return None
    if isinstance(tags, mutagen.id3.ID3):
        values = [str(v) for frame in tags.getall("TALB") for v in frame.text]
    elif isinstance(tags, mutagen.mp4.MP4Tags):
        values = [str(v) for v in tags.get("\xa9alb", [])]
    else:
        values = [v for k, v in tags if k.lower() == "album"]
    return next((v.strip() for v in values if v.strip()), None)


# --------------------------------------------------------------------------- planning


def _present(genre: str, existing: Sequence[str]) -> bool:
    """Whether ``genre`` is among ``existing``, case-insensitively.

    A value holding several genres joined with ``;`` (as ID3v2.3 stores them) counts
    each of its parts.
    """
    wanted = genre.strip().casefold()
    for value in existing:
        parts = [value, *value.split(";")]
        if any(part.strip().casefold() == wanted for part in parts):
            return True
    return False


def plan_genres(existing: Sequence[str], new: str | Sequence[str], policy: Policy) -> list[str] | None:
    """The genres to write given the ``existing`` ones, or ``None`` when nothing is to be written.

    ``new`` is a genre or a list of them (stripped of surrounding spaces). Policies:

    * ``keep``: write ``new`` only when the file has no genre yet;
    * ``overwrite``: replace whatever is there with ``new`` (``None`` when it is exactly that already);
    * ``append``: add each genre of ``new`` not already present (case-insensitively)
      after the existing ones (``None`` when all are present).

    Pure: reads and writes nothing.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    wanted: list[str] = []
    for genre in [new] if isinstance(new, str) else list(new):
        genre = genre.strip()
        if not genre:
            raise ValueError("a genre must not be blank")
        if not _present(genre, wanted):
            wanted.append(genre)
    if not wanted:
        raise ValueError("no genre given")
    existing = list(existing)
    if policy == "keep":
        return None if existing else wanted
    if policy == "overwrite":
        return None if existing == wanted else wanted
    missing = [g for g in wanted if not _present(g, existing)]
    return existing + missing if missing else None


# --------------------------------------------------------------------------- writing


def _check_genres(genres: Sequence[str]) -> list[str]:
    genres = list(genres)
    for genre in genres:
        if not isinstance(genre, str) or not genre.strip() or any(unicodedata.category(c) == "Cc" for c in genre):
            raise ValueError(f"invalid genre {genre!r}: must be a non-blank string without control characters")
    return genres


@dataclass(frozen=True)
class _Format:
    """How one kind of file is tagged, each step on the file open in binary mode:
    ``check`` walks the structure a write would touch (:class:`~genre_tagger.tagging.id3.UnsafeTag`
    when it cannot be walked); ``write(file, stored, genres, id3_version)`` sets the genres;
    ``keep`` is everything a genre write must leave as it was; ``id3`` gives the raw ID3v2
    tag of the ID3 kinds."""

    check: Callable[[BinaryIO], object]
    write: Callable[[BinaryIO, list[str], list[str], int], None]
    keep: Callable[[BinaryIO], object]
    id3: Callable[[BinaryIO], bytes | None] | None = None


def _ogg_check(file: BinaryIO) -> None:
    pages = vorbis._comment_pages(file)
    packets, index = vorbis._comment_packet(pages)
    vorbis.parse_comments(packets[index][vorbis._comment_start(packets[index]) :])


_FORMATS: dict[type, _Format] = {
    MP3: _Format(lambda f: id3.parse(data) if (data := id3.mp3_tag(f)) else None,
                 lambda f, stored, genres, version: id3.write_mp3(f, stored, genres, version),
                 id3.mp3_snapshot, id3.mp3_tag),
    WAVE: _Format(lambda f: id3.parse(data) if (data := id3.iff_tag(f, True)) else None,
                  lambda f, stored, genres, version: id3.write_iff(f, stored, version, riff=True),
                  lambda f: id3.iff_snapshot(f, True), lambda f: id3.iff_tag(f, True)),
    AIFF: _Format(lambda f: id3.parse(data) if (data := id3.iff_tag(f, False)) else None,
                  lambda f, stored, genres, version: id3.write_iff(f, stored, version, riff=False),
                  lambda f: id3.iff_snapshot(f, False), lambda f: id3.iff_tag(f, False)),
    FLAC: _Format(lambda f: vorbis.flac_layout(f).comments(), lambda f, stored, genres, version: vorbis.write_flac(f, stored),
                  vorbis.flac_snapshot),
    MP4: _Format(mp4.check_mp4, lambda f, stored, genres, version: mp4.write_mp4(f, stored), mp4.mp4_snapshot),
    **{kind: _Format(_ogg_check, lambda f, stored, genres, version: vorbis.write_ogg(f, stored), vorbis.ogg_snapshot)
       for kind in (OggVorbis, OggOpus, OggFLAC)},
}


def _stored(genres: list[str], version: int | None, id3_join: str | None) -> list[str]:
    """What ``genres`` read back as once stored (ID3v2.3 joins them into one value)."""
    if version == 3 and id3_join is not None and len(genres) > 1:
        return [id3_join.join(genres)]
    return genres


def _stored_in(cls: type, file: BinaryIO, genres: list[str], id3_version: int, id3_join: str | None) -> list[str]:
    raw_tag = _FORMATS[cls].id3
    if raw_tag is None:
        return genres
    return _stored(genres, id3.stored_version(raw_tag(file), id3_version), id3_join)


def stored_genres(
    path: str | os.PathLike[str],
    genres: Sequence[str],
    *,
    id3_version: int = 4,
    id3_join: str | None = "; ",
) -> list[str]:
    """What :func:`read_genres` returns after ``write_genres(path, genres, ...)`` with the same options.

    Equal to ``genres`` except in an ID3v2.3 tag, where several genres become one value
    joined with ``id3_join``. The journal records this, so that undo can tell whether
    the file still holds what was written.
    """
    genres = _check_genres(genres)
    name = os.fspath(path)
    target = Path(os.path.realpath(path))
    cls = _identify(target, name)
    with _opened(target, name, "rb") as file:
        return _stored_in(cls, file, genres, id3_version, id3_join)


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`UnsafeTagError` when a genre write could not keep every other byte of
    ``path``'s metadata (a tag whose structure cannot be walked), :class:`TagError` when
    the file cannot be read or holds no tags. Cheap: reads the tag region only."""
    name = os.fspath(path)
    target = Path(os.path.realpath(path))
    cls = _identify(target, name)
    with _opened(target, name, "rb") as file:
        _checked(lambda: _FORMATS[cls].check(file), name)


def _checked(step: Callable[[], object], name: str):
    """``step()``, its :class:`~genre_tagger.tagging.id3.UnsafeTag` as :class:`UnsafeTagError`,
    and what a damaged file makes the format's walk raise (a file cut short, sizes that
    point past its end) as :class:`TagError`."""
    try:
        return step()
    except id3.UnsafeTag as error:
        raise UnsafeTagError(f"{name}: not written: {error}") from None
    except OSError as error:
        raise TagError(f"{name}: {_cause(error)}") from error
    except EOFError as error:
        raise TagError(f"{name}: cannot read tags: the file ends before its tags do (truncated?)") from error
    except (mutagen.MutagenError, struct.error, ValueError, IndexError, KeyError) as error:
        raise TagError(f"{name}: cannot read tags: they are damaged ({type(error).__name__}: {error})") from error


@contextmanager
def _opened(path: Path, name: str, mode: str) -> Iterator[BinaryIO]:
    """``path`` opened as a regular file (never blocking on a FIFO), errors as :class:`TagError`."""
    try:
        file = open_regular(path, mode)
    except NotRegularFile as e:
        raise TagError(f"{name}: not a regular file (a FIFO, device or folder): not read") from e
    except OSError as e:
        raise TagError(f"{name}: {_cause(e)}") from e
    with file:
        yield file


def _audio_params(audio: mutagen.FileType) -> tuple[object, object, float]:
    """Sample rate, channels and length: must be the same after tagging."""
    info = audio.info
    length = float(getattr(info, "length", 0.0) or 0.0)
    return getattr(info, "sample_rate", None), getattr(info, "channels", None), length


def _cause(e: OSError) -> str:
    """A short cause for an OSError."""
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EROFS:
        return "read-only file system"
    if e.errno == errno.ENOSPC:
        return "no space left on device"
    if e.errno == errno.ENOENT:
        return "no such file"
    return e.strerror or str(e)


def _mutagen_cause(e: mutagen.MutagenError) -> str:
    inner = e.args[0] if e.args else None
    if isinstance(inner, OSError):
        return _cause(inner)
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _read_only(path: Path) -> bool:
    """No write permission, by the permission bits (even for root) or by access(2)."""
    mode = os.stat(path).st_mode
    return not (mode & 0o222) or not os.access(path, os.W_OK)


def fsync(path: Path | str, directory: bool = False) -> None:
    """Flush ``path`` (a file, or with ``directory`` a folder's entries) to disk; a file
    system that cannot sync folders is let be."""
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if not directory or e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _copy_metadata(st: os.stat_result, src: Path, dst: str) -> None:
    """Give ``dst`` the owner, permission bits and extended attributes of ``src``."""
    try:
        os.chown(dst, st.st_uid, st.st_gid)
    except OSError:
        try:  # an ordinary user may still set the group, if a member of it
            os.chown(dst, -1, st.st_gid)
        except OSError:
            pass
    os.chmod(dst, stat_module.S_IMODE(st.st_mode))  # after chown, which may clear setuid bits
    if hasattr(os, "listxattr"):
        try:
            names = os.listxattr(src)
        except OSError:
            return
        for attr in names:
            try:
                os.setxattr(dst, attr, os.getxattr(src, attr))
            except OSError:
                pass


def _tag_copy(cls: type[mutagen.FileType], copy: Path, name: str, genres: list[str], id3_version: int,
              id3_join: str | None) -> None:
    """Write ``genres`` into ``copy`` (the temporary copy of the file ``name``), flush it to
    disk and read it back: :class:`TagError` unless it holds exactly the expected genres,
    every other byte of its metadata and audio as before, and the same audio parameters."""
    form = _FORMATS[cls]
    params = _audio_params(_load(cls, copy, name))
    with _opened(copy, name, "r+b") as file:
        before = _checked(lambda: form.keep(file), name)
        expected = _stored_in(cls, file, genres, id3_version, id3_join)
        _checked(lambda: form.write(file, expected, genres, id3_version), name)
        file.flush()
        after = _checked(lambda: form.keep(file), name)
    fsync(copy)
    if after != before:
        raise UnsafeTagError(f"{name}: not written: writing the genre would have changed other metadata")
    check = _load(cls, copy, name)
    got = _genres_of(check)
    if got != expected:
        raise TagError(f"{name}: the new tag read back as {got!r} instead of {expected!r}; not written")
    new_params = _audio_params(check)
    if new_params[:2] != params[:2] or abs(new_params[2] - params[2]) > 0.01 * max(params[2], 1.0):
        raise TagError(f"{name}: audio parameters changed while tagging ({params} -> {new_params}); not written")


def write_genres(
    path: str | os.PathLike[str],
    genres: Sequence[str],
    *,
    id3_version: int = 4,
    id3_join: str | None = "; ",
    expect: FileStamp | None = None,
    verbatim: bool = False,
) -> None:
    """Set the genre tag of ``path`` to ``genres``; an empty list removes the genre tag.

    Nothing but the genre changes (see the module documentation for the conventions
    per format and how the file is replaced safely). ``id3_version`` (3 or 4) is the
    ID3v2 version of a new ID3 tag; ``id3_join`` joins several genres in an ID3v2.3
    tag (``None``: store them as separate values, as ID3v2.4 does). With ``expect``,
    the file must still have that :class:`FileStamp`. ``verbatim``: ``genres`` are values
    once read from this file, given back by undo as they were (control characters
    included), not checked as new values are.

    Raises :class:`TagError` (the original untouched) when the format cannot hold tags,
    the file changed since it was analysed, it or its directory is read-only, or
    writing or verifying the new file failed.
    """
    genres = list(genres) if verbatim else _check_genres(genres)
    if id3_version not in (3, 4):
        raise ValueError(f"id3_version must be 3 or 4, not {id3_version!r}")
    name = os.fspath(path)
    target = Path(os.path.realpath(path))  # replace the file a symlink points to, not the link
    cls = _identify(target, name)
    try:
        before = os.stat(target)
    except OSError as e:
        raise TagError(f"{name}: {_cause(e)}") from e
    if not stat_module.S_ISREG(before.st_mode):
        raise TagError(f"{name}: not a regular file")
    if expect is not None and FileStamp.of(before) != expect:
        raise TagError(f"{name}: file changed since it was analysed")
    if _read_only(target):
        raise TagError(f"{name}: permission denied (the file is read-only)")
    if _read_only(target.parent):
        raise TagError(f"{name}: permission denied (its directory is read-only)")

    def unchanged() -> bool:
        now = os.stat(target)
        same_file = (now.st_ino, now.st_dev) == (before.st_ino, before.st_dev)
        return same_file and FileStamp.of(now) == FileStamp.of(before)

    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(prefix=temporary_prefix(target.name), suffix=TEMP_SUFFIX, dir=target.parent)
        with os.fdopen(fd, "wb") as out, open_regular(target) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        if not unchanged():
            raise TagError(f"{name}: file changed while it was being tagged")
        _tag_copy(cls, Path(temp), name, genres, id3_version, id3_join)
        _copy_metadata(before, target, temp)
        if not unchanged():
            raise TagError(f"{name}: file changed while it was being tagged")
        os.replace(temp, target)
        temp = None
        fsync(target.parent, directory=True)
    except OSError as e:
        raise TagError(f"{name}: {_cause(e)}") from e
    except mutagen.MutagenError as e:
        raise TagError(f"{name}: cannot write tags: {_mutagen_cause(e)}") from e
    finally:
        if temp is not None:
            try:
                os.unlink(temp)
            except OSError:
                pass


def remove_genres(path: str | os.PathLike[str], *, expect: FileStamp | None = None) -> None:
    """Remove the genre tag from ``path`` (the same as ``write_genres(path, [])``)."""
    write_genres(path, [], expect=expect)
