"""ID3v2 tags byte by byte: walk the frames, replace the genre frames, keep every other
frame exactly as it was.

mutagen parses every frame to rewrite a tag, and drops what it cannot parse (a cover with
an unknown text encoding, a frame of a broken size and, after it, the rest of the tag).
Here a tag is only walked -- frame headers and sizes, never the contents -- so a frame
nobody can read is kept byte for byte, and only ``TCON`` (``TCO`` in ID3v2.2) is written
anew. A tag whose frames cannot be walked (a size past the end of the tag, an unreadable
frame header, a CRC over the frames) is :class:`UnsafeTag`: it is not written at all.

Versions 2.2, 2.3 and 2.4 are written in their own version; tag-level unsynchronisation
(2.2, 2.3) is undone to walk the frames and applied again on writing; a 2.4 tag whose frame
sizes are plain integers rather than syncsafe ones (as iTunes wrote them) keeps that form.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from dataclasses import dataclass, field
from typing import BinaryIO

from mutagen._util import resize_bytes

HEADER_SIZE = 10
NEW_TAG_PADDING = 1024  # bytes of padding in a new or grown tag, so later edits fit in place
_FRAME_ID = {2: re.compile(rb"[A-Z0-9]{3}"), 3: re.compile(rb"[A-Z0-9]{4}"), 4: re.compile(rb"[A-Z0-9]{4}")}
GENRE_FRAME = {2: "TCO", 3: "TCON", 4: "TCON"}
_UNSYNC, _EXTENDED, _FOOTER = 0x80, 0x40, 0x10


class UnsafeTag(ValueError):
    """A tag whose structure cannot be walked, so writing it could lose frames; the
    message says why in a few words (``"TPE1 claims 2139062143 bytes, past the end of the tag"``)."""


@dataclass
class Frame:
    """One frame as stored: its id and its bytes in the file, header included (still
    unsynchronised in a tag that is)."""

    id: str
    raw: bytes


@dataclass
class Tag:
    """An ID3v2 tag walked to its frames.

    ``size`` is the tag's length in the file, header (and footer) included: where what
    follows it starts. ``extended`` is the extended header as stored; ``plain_sizes`` says
    that a 2.4 tag's frame sizes are plain integers.
    """

    version: int
    revision: int
    flags: int
    size: int
    extended: bytes = b""
    frames: list[Frame] = field(default_factory=list)
    plain_sizes: bool = False

    @classmethod
    def new(cls, version: int) -> Tag:
        return cls(version, 0, 0, 0)

    def other_frames(self) -> list[Frame]:
        """Every frame but the genre's."""
        return [frame for frame in self.frames if frame.id != GENRE_FRAME[self.version]]


def _syncsafe(data: bytes) -> int | None:
    if any(byte & 0x80 for byte in data):
        return None
    value = 0
    for byte in data:
        value = (value << 7) | byte
    return value


def _to_syncsafe(value: int) -> bytes:
    if value >= 1 << 28:
        raise UnsafeTag("its ID3 tag would exceed ID3v2's 256 MB")
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def unsynchronise(data: bytes) -> bytes:
    """ID3v2 unsynchronisation: a zero byte after every 0xFF that comes before a byte of
    0xE0 or more, or a zero."""
    return re.sub(rb"\xff(?=[\x00\xe0-\xff])", b"\xff\x00", data)


def resynchronise(data: bytes) -> bytes:
    return data.replace(b"\xff\x00", b"\xff")


def tag_size(header: bytes) -> int | None:
    """The length in the file of the ID3v2 tag that ``header`` (its first 10 bytes)
    starts, or ``None`` when it is no ID3v2 header."""
    if len(header) < HEADER_SIZE or header[:3] != b"ID3" or header[3] not in (2, 3, 4) or header[4] == 0xFF:
        return None
    size = _syncsafe(header[6:10])
    if size is None:
        return None
    return HEADER_SIZE + size + (HEADER_SIZE if header[3] == 4 and header[5] & _FOOTER else 0)


def parse(data: bytes) -> Tag:
    """The tag at the start of ``data`` (its :func:`tag_size` bytes at least). Raises
    :class:`UnsafeTag` when its frames cannot be walked."""
    size = tag_size(data[:HEADER_SIZE])
    if size is None:
        raise UnsafeTag("its ID3 tag header is damaged")
    if len(data) < size:
        raise UnsafeTag("its ID3 tag is longer than the file")
    version, revision, flags = data[3], data[4], data[5]
    if version == 2 and flags & 0x40:
        raise UnsafeTag("its ID3v2.2 tag is compressed")
    stored = data[HEADER_SIZE : HEADER_SIZE + _syncsafe(data[6:10])]
    unsynchronised = version < 4 and flags & _UNSYNC
    body = resynchronise(stored) if unsynchronised else stored
    tag = Tag(version, revision, flags, size)
    start = 0
    if version >= 3 and flags & _EXTENDED:
        tag.extended = _extended_header(body, version)
        start = len(tag.extended)
    try:
        tag.frames = _walk(body, start, version, plain_sizes=False)
    except UnsafeTag:
        if version != 4:
            raise
        tag.frames, tag.plain_sizes = _walk(body, start, version, plain_sizes=True), True
    if unsynchronised:  # keep each frame's bytes as stored, not as unsynchronised anew
        offsets = _stored_offsets(stored)
        position = start
        for frame in tag.frames:
            length = len(frame.raw)
            frame.raw = stored[offsets[position] : offsets[position + length]]
            position += length
        tag.extended = stored[: offsets[start]]
    return tag


def _stored_offsets(stored: bytes) -> list[int]:
    """Where each byte of the resynchronised ``stored`` bytes is in ``stored``, and its end."""
    offsets, i = [], 0
    while i < len(stored):
        offsets.append(i)
        i += 2 if stored[i] == 0xFF and stored[i + 1 : i + 2] == b"\x00" else 1
    offsets.append(len(stored))
    return offsets


def _extended_header(body: bytes, version: int) -> bytes:
    if version == 3:
        if len(body) < 4:
            raise UnsafeTag("its ID3 tag's extended header is damaged")
        length = 4 + int.from_bytes(body[:4], "big")
        if length not in (10, 14) or len(body) < length:
            raise UnsafeTag("its ID3 tag's extended header is damaged")
        if body[4] & 0x80:
            raise UnsafeTag("its ID3 tag carries a CRC of its frames")
        return body[:length]
    length = _syncsafe(body[:4])
    if length is None or length < 6 or len(body) < length:
        raise UnsafeTag("its ID3 tag's extended header is damaged")
    if body[5] & 0x20:
        raise UnsafeTag("its ID3 tag carries a CRC of its frames")
    return body[:length]


def _walk(body: bytes, position: int, version: int, plain_sizes: bool) -> list[Frame]:
    """The frames of ``body`` from ``position`` to its padding."""
    header = 6 if version == 2 else 10
    frames = []
    while position + header <= len(body) and body[position] != 0:
        frame_id = body[position : position + (3 if version == 2 else 4)]
        if not _FRAME_ID[version].fullmatch(frame_id):
            raise UnsafeTag(f"its ID3 tag has an unreadable frame header at byte {HEADER_SIZE + position}")
        size_bytes = body[position + len(frame_id) : position + len(frame_id) + (3 if version == 2 else 4)]
        size = _syncsafe(size_bytes) if version == 4 and not plain_sizes else int.from_bytes(size_bytes, "big")
        name = frame_id.decode("ascii")
        if size is None or position + header + size > len(body):
            claimed = int.from_bytes(size_bytes, "big")
            raise UnsafeTag(f"its ID3 tag has frames that cannot be rewritten safely ({name} claims {claimed} bytes, "
                            "past the end of the tag)")
        frames.append(Frame(name, body[position : position + header + size]))
        position += header + size
    return frames  # what follows is padding (a few stray bytes too short for a frame count as such)


def text_frame(tag: Tag, frame_id: str, values: list[str]) -> Frame:
    """A text frame of ``values`` for ``tag``: UTF-8 (2.4) or UTF-16 (2.2, 2.3), values
    separated by NUL as mutagen reads them."""
    if tag.version == 4:
        payload = b"\x03" + "\x00".join(values).encode("utf-8")
    else:
        payload = b"\x01" + b"\x00\x00".join(b"\xff\xfe" + value.encode("utf-16-le") for value in values)
    frame_flags = b"\x00\x00"
    if tag.version == 4 and tag.flags & _UNSYNC:  # every frame of such a tag is unsynchronised
        payload, frame_flags = unsynchronise(payload), b"\x00\x02"
    if tag.version == 2:
        raw = frame_id.encode() + len(payload).to_bytes(3, "big") + payload
    else:
        size = len(payload).to_bytes(4, "big") if tag.version == 3 or tag.plain_sizes else _to_syncsafe(len(payload))
        raw = frame_id.encode() + size + frame_flags + payload
    if tag.version < 4 and tag.flags & _UNSYNC:  # the whole tag is stored unsynchronised
        raw = unsynchronise(raw)
    return Frame(frame_id, raw)


def with_genres(tag: Tag, genres: list[str]) -> list[Frame]:
    """``tag``'s frames with the genre frames replaced by one holding ``genres`` (none for
    an empty list), where the first of them was, else last."""
    genre_id = GENRE_FRAME[tag.version]
    others = [frame for frame in tag.frames if frame.id != genre_id]
    at = len(list(itertools.takewhile(lambda frame: frame.id != genre_id, tag.frames)))
    return others[:at] + ([text_frame(tag, genre_id, genres)] if genres else []) + others[at:]


def render(tag: Tag, frames: list[Frame]) -> bytes:
    """``tag`` with ``frames``, the same length in the file as before when they fit (the
    padding takes up the difference), else with :data:`NEW_TAG_PADDING` bytes of padding."""
    content = b"".join(frame.raw for frame in frames)
    extended = tag.extended
    footer = tag.version == 4 and tag.flags & _FOOTER
    target = tag.size - HEADER_SIZE - (HEADER_SIZE if footer else 0)
    if tag.version < 4 and tag.flags & _UNSYNC and content.endswith(b"\xff"):
        content += b"\x00"  # in an unsynchronised tag, the padding's zero must not follow 0xFF bare
    padding = 0 if footer else (target - len(extended) - len(content))
    if padding < 0:
        padding = NEW_TAG_PADDING
    if tag.version == 3 and extended:  # its extended header records the padding's size
        extended = extended[:6] + padding.to_bytes(4, "big") + extended[10:]
    body = extended + content + b"\x00" * padding
    header = bytes([tag.version, tag.revision, tag.flags]) + _to_syncsafe(len(body))
    return b"ID3" + header + body + (b"3DI" + header if footer else b"")


def replaced(data: bytes | None, stored: list[str], new_version: int) -> bytes | None:
    """The tag ``data`` (``None``: no tag) holding ``stored`` as its genres: its new bytes,
    ``b""`` when it is left with nothing to say (no frame), ``None`` when nothing changes."""
    if data is None:
        if not stored:
            return None
        tag = Tag.new(new_version)
    else:
        tag = parse(data)
    frames = with_genres(tag, stored)
    if not frames and not tag.extended:
        return b"" if data is not None else None  # an empty tag says nothing: leave no header behind
    return render(tag, frames)


def stored_version(data: bytes | None, new_version: int) -> int:
    """The ID3v2 version the genres of a file with tag ``data`` are written in: the
    tag's own, else ``new_version`` for a new tag."""
    return new_version if data is None else data[3]


# --------------------------------------------------------------------------- files

V1_SIZE = 128


def v1_genre_byte(genres: list[str]) -> int:
    """The ID3v1 genre number of the first genre ID3v1 knows, 255 (none) otherwise."""
    from mutagen.id3 import TCON

    for genre in genres:
        if genre in TCON.GENRES and TCON.GENRES.index(genre) < 255:
            return TCON.GENRES.index(genre)
    return 255


def mp3_tag(file: BinaryIO) -> bytes | None:
    """The bytes of the ID3v2 tag at the start of an MP3 file, or ``None``."""
    file.seek(0)
    size = tag_size(file.read(HEADER_SIZE))
    if size is None:
        return None
    file.seek(0)
    return file.read(size)


def write_mp3(file: BinaryIO, stored: list[str], genres: list[str], new_version: int) -> None:
    """Set the genres of the MP3 file open (read-write) in ``file``: the ID3v2 tag in
    front, and the genre byte of an ID3v1 tag at the end (every other byte of it kept)."""
    old = mp3_tag(file)
    new = replaced(old, stored, new_version)
    if new is not None:
        old_size = len(old) if old is not None else 0
        if len(new) != old_size:
            resize_bytes(file, old_size, len(new), 0)
        file.seek(0)
        file.write(new)
    end = file.seek(0, os.SEEK_END)
    if end >= V1_SIZE:
        file.seek(end - V1_SIZE)
        if file.read(3) == b"TAG":
            file.seek(end - 1)
            file.write(bytes([v1_genre_byte(genres)]))


def mp3_snapshot(file: BinaryIO) -> tuple:
    """Everything of an MP3 file but its genre: the ID3v2 frames, and a digest of all that
    follows the tag (audio, APEv2, an ID3v1 tag but its genre byte)."""
    data = mp3_tag(file)
    start = len(data) if data is not None else 0
    end = file.seek(0, os.SEEK_END)
    has_v1 = False
    if end - start >= V1_SIZE:
        file.seek(end - V1_SIZE)
        has_v1 = file.read(3) == b"TAG"
    file.seek(start)
    return _frames_of(parse(data) if data is not None else None), digest(file, end - start - has_v1)


def digest(file: BinaryIO, size: int) -> str:
    """SHA-256 of the next ``size`` bytes of ``file``."""
    hashed = hashlib.sha256()
    while size > 0:
        chunk = file.read(min(1 << 20, size))
        if not chunk:
            break
        hashed.update(chunk)
        size -= len(chunk)
    return hashed.hexdigest()


def _frames_of(tag: Tag | None) -> tuple:
    """The frames but the genre's, as ``(id, bytes)``: a new tag has none."""
    return () if tag is None else tuple((frame.id, frame.raw) for frame in tag.other_frames())


def _iff(file: BinaryIO, riff: bool):
    """mutagen's view of the chunks of a WAV (``riff``) or AIFF file."""
    from mutagen import MutagenError
    from mutagen.aiff import AIFFFile
    from mutagen.wave import _WaveFile

    file.seek(0)
    try:
        return _WaveFile(file) if riff else AIFFFile(file)
    except (MutagenError, ValueError) as error:
        raise UnsafeTag(f"its chunks are damaged ({error})") from None


def write_iff(file: BinaryIO, stored: list[str], new_version: int, riff: bool) -> None:
    """Set the genres of the WAV (``riff``) or AIFF file open (read-write) in ``file``:
    its ID3v2 chunk, added or removed as needed."""
    container = _iff(file, riff)
    key = "id3" if riff else "ID3"
    chunk = container[key] if key in container else None
    new = replaced(chunk.read() if chunk is not None else None, stored, new_version)
    if new is None:
        return
    if new == b"":
        container.delete_chunk(key)
        return
    if chunk is None:
        chunk = container.insert_chunk(key)
    chunk.resize(len(new))
    chunk.write(new)


def iff_tag(file: BinaryIO, riff: bool) -> bytes | None:
    """The bytes of a WAV or AIFF file's ID3v2 chunk, or ``None``."""
    container = _iff(file, riff)
    key = "id3" if riff else "ID3"
    return container[key].read() if key in container else None


def iff_snapshot(file: BinaryIO, riff: bool) -> tuple:
    """Everything of a WAV or AIFF file but its genre: every other chunk, and the ID3 frames."""
    container = _iff(file, riff)
    key = "id3" if riff else "ID3"
    chunks = tuple((chunk.id, hashlib.sha256(chunk.read()).hexdigest()) for chunk in container.root.subchunks()
                   if chunk.id != key)
    data = container[key].read() if key in container else None
    return chunks, _frames_of(parse(data) if data else None)
