"""Vorbis comments byte by byte, in FLAC files and in Ogg streams (Vorbis, Opus, FLAC).

mutagen decodes every comment to rewrite them and drops what it cannot decode (a key with
a space or a non-ASCII letter, an entry without ``=``, text that is not UTF-8). Here
entries are kept as the bytes they are; only the ``GENRE`` entries are written anew,
where the first of them was. In a FLAC file the other metadata blocks (pictures, cue
sheets, application data) are copied as they are, and the padding block absorbs the
change where it can so that the audio does not move. In an Ogg stream the comment packet
is replaced and the pages around it are laid out again by mutagen's page code; every
other packet is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from mutagen._util import resize_bytes
from mutagen.ogg import OggPage

from genre_tagger.tagging.id3 import UnsafeTag, digest, tag_size

GROWN_PADDING = 1024  # bytes of padding after metadata that had to grow
STREAMINFO, PADDING, VORBIS_COMMENT = 0, 1, 4


@dataclass
class Comments:
    """A Vorbis comment block: ``vendor`` string and ``entries`` as stored (``KEY=value``,
    UTF-8 by the specification, kept as bytes whatever they are), and the bytes that
    follow them in their packet (Vorbis's framing bit, padding, Opus's binary data)."""

    vendor: bytes
    entries: list[bytes]
    trailing: bytes = b""

    def others(self) -> tuple:
        """Everything but the genre entries: what a genre write must keep."""
        return self.vendor, tuple(entry for entry in self.entries if not is_genre(entry)), self.trailing


def is_genre(entry: bytes) -> bool:
    return entry.split(b"=", 1)[0].lower() == b"genre" and b"=" in entry


def parse_comments(data: bytes) -> Comments:
    """The comment block at the start of ``data``; :class:`UnsafeTag` when its lengths
    run past its end."""
    def u32(at: int) -> int:
        if at + 4 > len(data):
            raise UnsafeTag("its Vorbis comment block is cut short")
        return struct.unpack_from("<I", data, at)[0]

    length = u32(0)
    position = 4 + length
    vendor = data[4:position]
    count = u32(position)
    position += 4
    entries = []
    for _ in range(count):
        length = u32(position)
        if position + 4 + length > len(data):
            raise UnsafeTag("its Vorbis comment block has an entry longer than the block")
        entries.append(data[position + 4 : position + 4 + length])
        position += 4 + length
    return Comments(vendor, entries, data[position:])


def render_comments(comments: Comments) -> bytes:
    parts = [struct.pack("<I", len(comments.vendor)), comments.vendor, struct.pack("<I", len(comments.entries))]
    for entry in comments.entries:
        parts += [struct.pack("<I", len(entry)), entry]
    return b"".join(parts) + comments.trailing


def with_genres(comments: Comments, genres: list[str]) -> Comments:
    """``comments`` with one ``GENRE`` entry per genre where the first genre entry was
    (in its key's spelling), else last."""
    first = next((entry for entry in comments.entries if is_genre(entry)), None)
    key = first.split(b"=", 1)[0] if first is not None else b"GENRE"
    at = comments.entries.index(first) if first is not None else len(comments.entries)
    kept = [entry for entry in comments.entries[:at] if not is_genre(entry)]
    after = [entry for entry in comments.entries[at:] if not is_genre(entry)]
    new = [key + b"=" + genre.encode("utf-8") for genre in genres]
    return Comments(comments.vendor, kept + new + after, comments.trailing)


# --------------------------------------------------------------------------- FLAC


@dataclass
class FlacLayout:
    """Where a FLAC file's metadata lies: ``start`` (its ``fLaC``, after any ID3v2 tag in
    front), its ``blocks`` as ``(type, data)``, and ``end``, where the audio frames start."""

    start: int
    blocks: list[tuple[int, bytes]] = field(default_factory=list)
    end: int = 0

    def comments(self) -> Comments:
        data = next((data for kind, data in self.blocks if kind == VORBIS_COMMENT), None)
        return Comments(b"", []) if data is None else parse_comments(data)


def flac_layout(file: BinaryIO) -> FlacLayout:
    """The metadata of the FLAC file open in ``file``; :class:`UnsafeTag` when its blocks
    cannot be walked."""
    file.seek(0)
    start = tag_size(file.read(10)) or 0
    file.seek(start)
    if file.read(4) != b"fLaC":
        raise UnsafeTag("no FLAC stream marker where it should be")
    layout = FlacLayout(start)
    last = False
    while not last:
        header = file.read(4)
        if len(header) < 4:
            raise UnsafeTag("its FLAC metadata is cut short")
        last, kind, length = bool(header[0] & 0x80), header[0] & 0x7F, int.from_bytes(header[1:], "big")
        data = file.read(length)
        if kind == 127 or len(data) < length:
            raise UnsafeTag("its FLAC metadata blocks are damaged")
        layout.blocks.append((kind, data))
    layout.end = file.tell()
    return layout


def _render_flac_blocks(blocks: list[tuple[int, bytes]]) -> bytes:
    parts = [b"fLaC"]
    for index, (kind, data) in enumerate(blocks):
        last = 0x80 if index == len(blocks) - 1 else 0
        parts.append(bytes([last | kind]) + len(data).to_bytes(3, "big") + data)
    return b"".join(parts)


def write_flac(file: BinaryIO, genres: list[str]) -> None:
    """Set the genres of the FLAC file open (read-write) in ``file``."""
    layout = flac_layout(file)
    comments = render_comments(with_genres(layout.comments(), genres))
    blocks = [(kind, data) for kind, data in layout.blocks if kind != PADDING]
    at = next((i for i, (kind, _) in enumerate(blocks) if kind == VORBIS_COMMENT), None)
    if at is None:
        blocks.insert(1, (VORBIS_COMMENT, comments))  # after STREAMINFO, which comes first
    else:
        blocks[at] = (VORBIS_COMMENT, comments)
    old_size = layout.end - layout.start
    room = old_size - len(_render_flac_blocks(blocks)) - 4  # a padding block's header is 4 bytes
    metadata = _render_flac_blocks(blocks + [(PADDING, b"\x00" * (room if room >= 0 else GROWN_PADDING))])
    if len(metadata) != old_size:
        resize_bytes(file, old_size, len(metadata), layout.start)
    file.seek(layout.start)
    file.write(metadata)


def flac_snapshot(file: BinaryIO) -> tuple:
    """Everything of a FLAC file but its genre and padding: what comes before its metadata
    (an ID3v2 tag), every other block, the other comments, and a digest of the audio."""
    layout = flac_layout(file)
    file.seek(0)
    before = file.read(layout.start)
    blocks = tuple((kind, hashlib.sha256(data).hexdigest()) for kind, data in layout.blocks
                   if kind not in (PADDING, VORBIS_COMMENT))
    end = file.seek(0, os.SEEK_END)
    file.seek(layout.end)
    return before, blocks, layout.comments().others(), digest(file, end - layout.end)


# --------------------------------------------------------------------------- Ogg

def _comment_start(packet: bytes) -> int | None:
    """Where the comments start in ``packet`` when it is a comment packet, else ``None``."""
    if packet.startswith(b"\x03vorbis"):
        return 7
    if packet.startswith(b"OpusTags"):
        return 8
    if packet[:1] in (b"\x04", b"\x84"):  # FLAC-in-Ogg: a VORBIS_COMMENT metadata block
        return 4
    return None


def _comment_pages(file: BinaryIO) -> list[OggPage]:
    """The pages that hold the first stream's comment packet, which starts a page (as
    Vorbis, Opus and FLAC-in-Ogg require), as mutagen finds them."""
    file.seek(0)
    page = OggPage(file)
    serial = page.serial
    while page.serial != serial or page.continued or _comment_start(page.packets[0]) is None \
            or page.packets[0].startswith(b"\x7fFLAC"):
        page = OggPage(file)
    pages = [page]
    while not (pages[-1].complete or len(pages[-1].packets) > 1):
        page = OggPage(file)
        if page.serial == serial:
            pages.append(page)
    return pages


def _comment_packet(pages: list[OggPage]) -> tuple[list[bytes], int]:
    """The packets of ``pages`` and the index of the comment packet among them."""
    packets = OggPage.to_packets(pages, strict=False)
    for index, packet in enumerate(packets):
        if _comment_start(packet) is not None and not packet.startswith(b"\x7fFLAC"):
            return packets, index
    raise UnsafeTag("no comment packet where the Ogg stream should have it")


def write_ogg(file: BinaryIO, genres: list[str]) -> None:
    """Set the genres of the Ogg file open (read-write) in ``file``."""
    old_pages = _comment_pages(file)
    packets, index = _comment_packet(old_pages)
    packet = packets[index]
    start = _comment_start(packet)
    data = render_comments(with_genres(parse_comments(packet[start:]), genres))
    if start == 4:  # FLAC-in-Ogg: the block header holds the block's length
        packets[index] = packet[:1] + len(data).to_bytes(3, "big") + data
    else:
        packets[index] = packet[:start] + data
    new_pages = OggPage._from_packets_try_preserve(packets, old_pages)
    OggPage.replace(file, old_pages, new_pages)


def ogg_snapshot(file: BinaryIO) -> tuple:
    """Everything of an Ogg file but its genre: per stream, a digest of its packets (page
    layout aside) with the comment packet's other comments in its place."""
    file.seek(0)
    streams: dict[int, dict] = {}
    while True:
        try:
            page = OggPage(file)
        except EOFError:
            break
        stream = streams.setdefault(page.serial, {"digest": hashlib.sha256(), "packet": -1, "current": bytearray()})
        for i, fragment in enumerate(page.packets):
            if not (i == 0 and page.continued):
                _close_packet(stream)
                stream["packet"] += 1
            stream["current"] += fragment
    result = []
    for serial, stream in streams.items():
        _close_packet(stream)
        result.append((stream["digest"].hexdigest(), tuple(stream.get("comments", ()))))
    return tuple(result)


def _close_packet(stream: dict) -> None:
    packet = bytes(stream["current"])
    stream["current"] = bytearray()
    if stream["packet"] < 0:
        return
    start = _comment_start(packet) if stream["packet"] == 1 else None
    if start is not None:
        stream["comments"] = parse_comments(packet[start:]).others()
        packet = packet[:start if start != 4 else 1]
    stream["digest"].update(len(packet).to_bytes(8, "big") + packet)

