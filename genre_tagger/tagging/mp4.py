"""MP4 (m4a) metadata byte by byte: the ``ilst`` list with every item but the genre kept
as stored.

mutagen parses every item of ``ilst`` to rewrite it, sorts them, and renders the ones it
knows anew. Here the items are kept as their bytes, in their order; only ``©gen`` (and
the old numeric ``gnre``, which it replaces) is written anew, where the first genre item
was. Putting the new ``ilst`` into the file -- resizing its parents, moving the chunk
offsets of the audio when ``moov`` comes before it -- is mutagen's own code.
"""

from __future__ import annotations

import hashlib
import struct
from typing import BinaryIO

from mutagen.mp4 import MP4Tags
from mutagen.mp4._atom import Atom, AtomError, Atoms

from genre_tagger.tagging.id3 import UnsafeTag

GENRE = b"\xa9gen"
GENRE_ITEMS = (GENRE, b"gnre")
ILST = (b"moov", b"udta", b"meta", b"ilst")


def _atoms(file: BinaryIO) -> Atoms:
    file.seek(0)
    try:
        return Atoms(file)
    except AtomError as error:
        raise UnsafeTag(f"its MP4 atoms are damaged ({error})") from None


def _items(file: BinaryIO, atoms: Atoms) -> list[tuple[bytes, bytes]]:
    """``ilst``'s items as ``(name, the atom's bytes)``, in order; none without ``ilst``."""
    try:
        ilst = atoms.path(*ILST)[-1]
    except KeyError:
        return []
    items = []
    for child in ilst.children:
        file.seek(child.offset)
        data = file.read(child.length)
        if len(data) != child.length:
            raise UnsafeTag("its MP4 metadata runs past the end of the file")
        items.append((child.name, data))
    return items


def check_mp4(file: BinaryIO) -> None:
    """Walk the atoms a genre write touches (:class:`UnsafeTag` when they are damaged)."""
    _items(file, _atoms(file))


def genre_atom(genres: list[str]) -> bytes:
    """``©gen`` holding ``genres`` as UTF-8 text, one ``data`` atom each (as mutagen writes it)."""
    return Atom.render(GENRE, b"".join(Atom.render(b"data", struct.pack(">2I", 1, 0) + g.encode("utf-8")) for g in genres))


def write_mp4(file: BinaryIO, genres: list[str]) -> None:
    """Set the genres of the MP4 file open (read-write) in ``file``."""
    atoms = _atoms(file)
    items = _items(file, atoms)
    at = next((i for i, (name, _) in enumerate(items) if name in GENRE_ITEMS), len(items))
    before = [data for name, data in items[:at] if name not in GENRE_ITEMS]
    after = [data for name, data in items[at:] if name not in GENRE_ITEMS]
    ilst = Atom.render(b"ilst", b"".join(before + ([genre_atom(genres)] if genres else []) + after))
    # mutagen's writer of a rendered ilst: it resizes the parents and moves chunk offsets
    MP4Tags()._MP4Tags__save(file, atoms, ilst, None)


def mp4_snapshot(file: BinaryIO) -> tuple:
    """Everything of an MP4 file but its genre: the other ``ilst`` items, every other leaf
    atom outside ``mdat``, the chunk offsets relative to the audio, and a digest of the audio."""
    atoms = _atoms(file)
    items = tuple((name, hashlib.sha256(data).hexdigest()) for name, data in _items(file, atoms) if name not in GENRE_ITEMS)
    leaves, offsets, audio = [], [], hashlib.sha256()
    mdat_start = None
    for path, atom in _leaves(atoms.atoms, ()):
        file.seek(atom.offset)
        data = file.read(atom.length)
        if atom.name == b"mdat":
            mdat_start = atom.offset if mdat_start is None else mdat_start
            audio.update(data[8:])
        elif atom.name in (b"stco", b"co64"):
            offsets.append((path, atom.name, data[16:]))
        elif atom.name != b"free" and path[:4] != ILST:  # the ilst items are compared above
            leaves.append((path, atom.name, hashlib.sha256(data[8:]).hexdigest()))
    relative = tuple((path, name, _relative_offsets(name, table, mdat_start or 0)) for path, name, table in offsets)
    return items, tuple(leaves), relative, audio.hexdigest()


def _leaves(atoms: list, path: tuple):
    for atom in atoms:
        if atom.children is None:
            yield path, atom
        else:
            yield from _leaves(atom.children, path + (atom.name,))


def _relative_offsets(name: bytes, table: bytes, origin: int) -> tuple[int, ...]:
    """A chunk offset table's entries, less ``origin`` (where the audio starts)."""
    code = ">I" if name == b"stco" else ">Q"
    size = struct.calcsize(code)
    return tuple(struct.unpack_from(code, table, i)[0] - origin for i in range(0, len(table) - len(table) % size, size))
