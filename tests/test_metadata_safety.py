"""A genre write keeps every byte of metadata it does not mean to change (#17).

Each file here is damaged but playable, the way years of taggers leave them: frames
mutagen cannot parse, ID3v2.2 and unsynchronised tags, APEv2 and ID3v1 at the end, an
ID3 tag in front of a FLAC stream, comments with odd keys, unknown MP4 atoms. A write
keeps every byte outside the genre (checked against the file's own bytes, not through
the code under test) and an undo gives back the original file; a tag whose frames
cannot be walked is not written at all, and the report says why.
"""

from __future__ import annotations

import csv
import os
import struct
from pathlib import Path

import mutagen
import pytest
from click.testing import CliRunner
from mutagen.apev2 import APEv2
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, COMM, ID3, RVA2, TALB, TIT2, TPE1
from mutagen.mp4 import MP4
from mutagen.ogg import OggPage

import audiofactory
from genre_tagger.cli import main
from genre_tagger.tagging.journal import Journal, JournalError, tag_file, undo
from genre_tagger.tagging.tags import UnsafeTagError, read_genres, write_genres

COVER = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3 + b"\xff\xe0\xff\x00\xff"


def bare(make_audio, name: str) -> Path:
    """A short file of generated music without any tag."""
    path = make_audio(name, seconds=4)
    if path.suffix in (".mp3", ".wav", ".aiff"):
        mutagen.File(path).delete() if path.suffix != ".mp3" else mutagen.id3.delete(str(path))
    return path


def write_then_undo(path: Path, tmp_path: Path) -> tuple[bytes, bytes, bytes]:
    """``(before, after the write, after its undo)``: Jazz written through the journal, then undone."""
    before = path.read_bytes()
    with Journal(tmp_path / "journal.jsonl") as journal:
        tag_file(journal, path, ["Jazz"], policy="overwrite")
    written = path.read_bytes()
    assert read_genres(path) == ["Jazz"]
    assert [r.status for r in undo(tmp_path / "journal.jsonl")] == ["restored"]
    return before, written, path.read_bytes()


def in_order(parts: list[bytes], data: bytes) -> bool:
    """Whether every one of ``parts`` stands in ``data``, in this order."""
    position = 0
    for part in parts:
        position = data.find(part, position)
        if position < 0:
            return False
        position += len(part)
    return True


# --------------------------------------------------------------------------- ID3v2 by hand


def syncsafe(n: int) -> bytes:
    return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))


def frame(version: int, frame_id: str, payload: bytes) -> bytes:
    if version == 2:
        return frame_id.encode() + len(payload).to_bytes(3, "big") + payload
    size = syncsafe(len(payload)) if version == 4 else len(payload).to_bytes(4, "big")
    return frame_id.encode() + size + b"\x00\x00" + payload


def tag(version: int, frames: list[bytes], padding: int = 600, unsync: bool = False) -> bytes:
    body = b"".join(frames)
    if unsync:
        body = body.replace(b"\xff", b"\xff\x00")  # over-cautious unsynchronisation: still valid
    body += b"\x00" * padding
    return b"ID3" + bytes([version, 0, 0x80 if unsync else 0]) + syncsafe(len(body)) + body


def unparseable_frames(version: int) -> list[bytes]:
    """A title, an album and a cover with an unknown text encoding (0x09), ReplayGain and a comment."""
    text = "TT2" if version == 2 else "TIT2"
    frames = [
        frame(version, text, b"\x00A Title\x00"),  # NUL-terminated, as many taggers write it
        frame(version, "TAL" if version == 2 else "TALB", b"\x09\x8f\x8e broken album"),
        frame(version, "PIC", b"\x09PNG\x03cover\x00" + COVER) if version == 2
        else frame(version, "APIC", b"\x09image/png\x00\x03cover\x00" + COVER),
        frame(version, "TXX" if version == 2 else "TXXX", b"\x00REPLAYGAIN_TRACK_GAIN\x00-6.50 dB"),
        frame(version, "COM" if version == 2 else "COMM", b"\x00eng\x00a comment"),
    ]
    if version == 4:
        frames.append(frame(4, "TSOP", b"\x03One, Artist"))
    return frames


@pytest.mark.parametrize("version, unsync", [(2, False), (3, False), (4, False), (3, True)])
def test_id3_frames_nobody_can_parse_survive_a_write_and_an_undo(version, unsync, make_audio, tmp_path):
    audio = bare(make_audio, "a.mp3").read_bytes()
    frames = unparseable_frames(version)
    path = tmp_path / "damaged.mp3"
    path.write_bytes(tag(version, frames, unsync=unsync) + audio)
    before, written, undone = write_then_undo(path, tmp_path)
    assert written[3] == version  # written in its own version
    body = written[10:]
    if unsync:
        body = body.replace(b"\xff\x00", b"\xff")
    assert in_order(frames, body), "a frame other than the genre changed"
    assert written.endswith(audio)
    assert undone == before


@pytest.mark.parametrize("breakage", ["TPE1 size", "COMM size"])
def test_a_tag_whose_frames_cannot_be_walked_is_kept_and_the_report_says_why(breakage, make_audio, tmp_path):
    """A broken frame size would make any rewrite lose every frame after it: not written."""
    path = bare(make_audio, "broken.mp3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text="A Title"))
    tags.add(TPE1(encoding=3, text="Artist"))
    tags.add(COMM(encoding=3, lang="eng", desc="", text="a long comment that runs on"))
    tags.add(TALB(encoding=3, text="Album"))
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=COVER))
    tags.save(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"TPE1" if breakage == "TPE1 size" else b"COMM")
    data[at + 4 : at + 8] = b"\x7f\x7f\x7f\x7f" if breakage == "TPE1 size" else syncsafe(2)
    path.write_bytes(bytes(data))

    with pytest.raises(UnsafeTagError, match="cannot be rewritten safely|unreadable frame header"):
        write_genres(path, ["Jazz"])
    assert path.read_bytes() == bytes(data)
    report = tmp_path / "report.csv"
    for args in ([], ["--write"]):  # the dry run says so too
        result = CliRunner().invoke(main, ["scan", str(path), "--report", str(report), "--model", "knn",
                                           "--models-dir", str(TINY[0]), "--journal", str(tmp_path / "j.jsonl"), *args])
        assert result.exit_code == 0, result.output
        (row,) = csv.DictReader(report.open())
        assert row["status"] == "kept" and "its ID3 tag has" in row["error"] and str(path) in row["error"]
    assert path.read_bytes() == bytes(data)


TINY: list[Path] = []


@pytest.fixture(autouse=True)
def _models(tiny_models):
    TINY[:] = [tiny_models]


def test_apev2_and_id3v1_at_the_end_keep_every_byte_but_the_genre_number(make_audio, tmp_path):
    path = bare(make_audio, "ape.mp3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text="A Title"))
    tags.add(RVA2(desc="track", channel=1, gain=-6.5, peak=0.9))
    tags.save(path)
    ape = APEv2()
    ape["Title"] = "APE title"
    ape["Replaygain_Track_Gain"] = "-6.50 dB"
    ape.save(path)
    with open(path, "ab") as f:
        f.write(b"TAG" + b"v1 title".ljust(30, b"\0") + b"\0" * 60 + b"1999" + b"\0" * 30 + bytes([17]))
    before, written, undone = write_then_undo(path, tmp_path)
    tail = before[before.index(b"APETAGEX") :]
    assert written.endswith(tail[:-1] + bytes([mutagen.id3.TCON.GENRES.index("Jazz")]))
    assert undone.endswith(tail)  # Rock again, in the genre byte too
    assert read_genres(path) == ["Rock"]  # what the file said before (from its ID3v1 tag)


@pytest.mark.parametrize("suffix", ["wav", "aiff"])
def test_an_id3_chunk_with_unparseable_frames_survives(suffix, make_audio, tmp_path):
    path = bare(make_audio, f"chunk.{suffix}")
    audio = mutagen.File(path)
    audio.add_tags()
    audio.tags.add(TIT2(encoding=3, text="A Title"))
    audio.tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=COVER))
    audio.save()
    data = bytearray(path.read_bytes())
    at = data.index(b"APIC")
    data[at + 10] = 0x09  # an encoding byte nobody knows
    path.write_bytes(bytes(data))
    size = sum(byte << shift for byte, shift in zip(data[at + 4 : at + 8], (21, 14, 7, 0)))  # mutagen writes ID3v2.4
    apic = bytes(data[at : at + 10 + size])
    before, written, undone = write_then_undo(path, tmp_path)
    assert apic in written
    assert undone == before


# --------------------------------------------------------------------------- Vorbis comments


ODD_ENTRIES = [b"Bad Key=space in the key", "ÄRTIST=a non-ASCII key".encode(), b"NOEQUALS",
               b"COMMENT=\xff\xfe not UTF-8", b"TITLE=A Title"]


def comment_block(entries: list[bytes], vendor: bytes = b"someone's tagger") -> bytes:
    out = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(entries))
    return out + b"".join(struct.pack("<I", len(e)) + e for e in entries)


def test_flac_with_id3_in_front_and_odd_comments_keeps_them(make_audio, tmp_path):
    path = bare(make_audio, "odd.flac")
    flac = FLAC(path)
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", COVER
    flac.add_picture(picture)
    flac["TITLE"] = "placeholder"
    flac.save()
    data = path.read_bytes()
    # the comment block rewritten by hand with entries mutagen would drop or rename
    at = 4
    blocks = []
    while True:
        header = data[at : at + 4]
        length = int.from_bytes(header[1:], "big")
        blocks.append((header[0] & 0x7F, data[at + 4 : at + 4 + length]))
        at += 4 + length
        if header[0] & 0x80:
            break
    blocks = [(4, comment_block(ODD_ENTRIES)) if kind == 4 else (kind, body) for kind, body in blocks]
    metadata = b"fLaC" + b"".join(bytes([(0x80 if i == len(blocks) - 1 else 0) | kind]) + len(body).to_bytes(3, "big") + body
                                  for i, (kind, body) in enumerate(blocks))
    id3_in_front = tag(3, [frame(3, "TIT2", b"\x00ID3 title")])
    path.write_bytes(id3_in_front + metadata + data[at:])
    before, written, undone = write_then_undo(path, tmp_path)
    assert written.startswith(id3_in_front)
    assert all(struct.pack("<I", len(e)) + e in written for e in ODD_ENTRIES)
    assert written.endswith(data[at:]) and COVER in written
    assert undone == before


def _with_comments(path: Path, magic: bytes, entries: list[bytes]) -> None:
    """Replace the comment packet of an Ogg file (test-side, with mutagen's page code)."""
    with open(path, "r+b") as f:
        first = OggPage(f)
        page = OggPage(f)
        assert page.serial == first.serial and page.packets[0].startswith(magic)
        old = [page]
        while not (old[-1].complete or len(old[-1].packets) > 1):
            old.append(OggPage(f))
        packets = OggPage.to_packets(old, strict=False)
        packets[0] = magic + comment_block(entries) + (b"\x01" if magic == b"\x03vorbis" else b"")
        OggPage.replace(f, old, OggPage.from_packets(packets, old[0].sequence))


@pytest.mark.parametrize("suffix, magic", [("ogg", b"\x03vorbis"), ("opus", b"OpusTags")])
def test_ogg_comments_with_odd_keys_are_kept(suffix, magic, make_audio, tmp_path):
    path = make_audio(f"odd.{suffix}", seconds=4)
    _with_comments(path, magic, ODD_ENTRIES)
    before, written, undone = write_then_undo(path, tmp_path)
    assert all(struct.pack("<I", len(e)) + e in written for e in ODD_ENTRIES)
    assert undone == before


# --------------------------------------------------------------------------- MP4


def atom(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + name + body


def test_mp4_unknown_atoms_are_kept(make_audio, tmp_path):
    path = make_audio("atoms.m4a", seconds=4)
    audio = MP4(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags["\xa9nam"] = "A Title"
    audio.save()
    unknown_item = atom(b"\xa9zzz", b"no data atom here")  # mutagen cannot parse it
    odd_item = atom(b"\xa9cmt", atom(b"data", struct.pack(">2I", 99, 0) + b"\x00\x01 binary of type 99"))
    data = path.read_bytes()
    at = data.index(b"ilst") - 4
    size = int.from_bytes(data[at : at + 4], "big")
    ilst = atom(b"ilst", data[at + 8 : at + size] + unknown_item + odd_item)
    grown = len(ilst) - size
    data = data[:at] + ilst + data[at + size :]
    for parent in (b"meta", b"udta", b"moov"):  # every parent grows by as much
        p = data.rindex(parent, 0, at) - 4
        data = data[:p] + struct.pack(">I", int.from_bytes(data[p : p + 4], "big") + grown) + data[p + 4 :]
    moov_first = data.index(b"moov") < data.index(b"mdat")
    assert not moov_first  # the audio does not move, so no chunk offset needs fixing here
    path.write_bytes(data)
    assert MP4(path).tags["\xa9nam"] == ["A Title"]
    before, written, undone = write_then_undo(path, tmp_path)
    assert unknown_item in written and odd_item in written
    mdat = before[before.index(b"mdat") - 4 :]
    mdat = mdat[: int.from_bytes(mdat[:4], "big")]
    assert mdat in written and mdat in undone
    assert unknown_item in undone and odd_item in undone


def test_a_write_that_would_change_another_frame_is_refused(make_audio, tmp_path, monkeypatch):
    """The read-back check compares every frame, not only the genre."""
    from genre_tagger.tagging import id3

    path = tmp_path / "a.mp3"
    path.write_bytes(tag(3, unparseable_frames(3)) + bare(make_audio, "b.mp3").read_bytes())
    before = path.read_bytes()
    real = id3.with_genres
    monkeypatch.setattr(id3, "with_genres", lambda tag, genres: real(tag, genres)[1:])  # a bug that drops a frame
    with pytest.raises(UnsafeTagError, match="would have changed other metadata"):
        write_genres(path, ["Jazz"])
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- outputs and undo


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_report_and_journal_never_overwrite_a_file_that_is_not_theirs(make_audio, tmp_path):
    library = tmp_path / "lib"
    song = make_audio("lib/song.mp3")
    flac = make_audio("lib/x.flac")
    song_bytes, flac_bytes = song.read_bytes(), flac.read_bytes()
    result = run("scan", library, "--models-dir", TINY[0], "--report", song)
    assert result.exit_code == 2 and "is not a genre-tagger report" in result.output
    assert "analysed" not in result.output  # refused before any analysis
    result = run("scan", library, "--models-dir", TINY[0], "--write", "--journal", flac)
    assert result.exit_code == 2 and "is not a genre-tagger journal" in result.output
    assert song.read_bytes() == song_bytes and flac.read_bytes() == flac_bytes
    result = run("scan", library, "--models-dir", TINY[0], "--report", tmp_path / "missing" / "r.csv")
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output
    # a report of ours is replaced; --force overwrites anything
    report = tmp_path / "r.csv"
    assert run("scan", library, "--models-dir", TINY[0], "--report", report).exit_code == 0
    assert run("scan", library, "--models-dir", TINY[0], "--report", report).exit_code == 0
    other = tmp_path / "notes.txt"
    other.write_text("my notes")
    assert run("scan", library, "--models-dir", TINY[0], "--report", other, "--force").exit_code == 0
    assert other.read_text().startswith("path,genre")


@pytest.mark.parametrize("option", ["--report", "--journal", "--json"])
def test_no_output_is_written_to_a_fifo_or_over_a_file_that_is_not_ours(option, make_audio, tmp_path):
    """A FIFO (or a device) in an output's place is refused at once, never waited on; an
    existing file that is not ours is refused too (--force may override a report or JSON)."""
    library = tmp_path / "lib"
    make_audio("lib/song.flac")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    extra = ["--write"] if option == "--journal" else []
    result = run("scan", library, "--models-dir", TINY[0], option, fifo, *extra)
    assert result.exit_code == 2 and "not a regular file" in result.output, result.output
    mine = tmp_path / "mine.txt"
    mine.write_text("my notes\n")
    result = run("scan", library, "--models-dir", TINY[0], option, mine, *extra)
    assert result.exit_code == 2 and "is not a genre-tagger" in result.output and mine.read_text() == "my notes\n"
    if option == "--json":  # output of ours is replaced; --force overwrites anything
        out = tmp_path / "out.jsonl"
        assert run("scan", library, "--models-dir", TINY[0], option, out).exit_code == 0
        assert run("scan", library, "--models-dir", TINY[0], option, out).exit_code == 0
        assert run("scan", library, "--models-dir", TINY[0], option, mine, "--force").exit_code == 0
        assert mine.read_text().startswith('{"path"')


def test_a_truncated_ogg_is_one_line_never_an_error_of_ours(make_audio, tmp_path):
    whole = make_audio("lib/whole.ogg", seconds=8).read_bytes()
    second_page = whole.index(b"OggS", 4)
    (tmp_path / "lib" / "whole.ogg").write_bytes(whole[: second_page + 30])  # cut inside its comment page
    result = run("scan", tmp_path / "lib", "--models-dir", TINY[0], "--write", "--journal", tmp_path / "j.jsonl")
    assert "please report" not in result.output and "Traceback" not in result.output, result.output


def test_csv_cells_that_spreadsheets_would_run_are_neutralised(make_audio, tmp_path):
    from genre_tagger.tagging.report import read_csv

    name = "=cmd|' -C calc'!A0.mp3"
    make_audio(f"lib/{name}")
    report = tmp_path / "r.csv"
    # tag values that a spreadsheet would run, for whatever class the model votes
    names = [f"--genre-name={label}=+SUM(1;{label})" for label in ("blues", "classical", "country", "disco", "hiphop",
                                                                  "jazz", "metal", "pop", "reggae", "rock")]
    result = run("scan", tmp_path / "lib", "--models-dir", TINY[0], "--report", report, "--min-confidence", "0", *names)
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(report.open()))
    assert not row["path"].startswith(("=", "+", "-", "@"))  # a path is absolute, but its cells are what count
    assert row["genre"].startswith("'+SUM(1;") and row["genres_written"].startswith("'+SUM(1;")
    for cell in row.values():
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    (result_row,) = read_csv(report)
    assert result_row.path.endswith(name) and result_row.genre.startswith("+SUM(1;")  # and it reads back as it was
    from genre_tagger.tagging.report import neutralise

    assert neutralise("=1+2") == "'=1+2" and neutralise("-3") == "'-3" and neutralise("@x") == "'@x"
    assert neutralise("'quoted") == "''quoted" and neutralise("plain") == "plain"


def _journal_of(path: Path, tmp_path: Path) -> Path:
    journal = tmp_path / "j.jsonl"
    with Journal(journal, roots=[path.parent]) as j:
        tag_file(j, path, "Jazz")
    return journal


@pytest.mark.parametrize("edit", ["outside", "huge", "relative", "symlink"])
def test_undo_refuses_what_a_journal_of_ours_could_not_hold(edit, make_audio, tmp_path):
    import json

    path = make_audio("lib/a.flac")
    journal = _journal_of(path, tmp_path)
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    entry = next(r for r in records if "path" in r)
    elsewhere = make_audio("elsewhere/b.flac")
    write_genres(elsewhere, ["Jazz"])
    if edit == "outside":
        entry["path"] = str(elsewhere)  # a file no scan of this journal touched
        records.append({"done": str(elsewhere), "stamp": [os.stat(elsewhere).st_size, os.stat(elsewhere).st_mtime_ns]})
    elif edit == "huge":
        entry["old"] = ["x" * 20_000_000]
    elif edit == "symlink":  # the file written replaced by a link to one outside the library
        path.unlink()
        path.symlink_to(elsewhere)
    else:
        entry["path"] = "lib/../lib/a.flac"
    journal.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = {p: p.read_bytes() for p in (path, elsewhere)}
    if edit == "huge":  # more than a journal line of ours holds: the whole journal is refused
        with pytest.raises(JournalError, match="line 3: longer than"):
            undo(journal)
    else:
        (result,) = undo(journal)
        assert result.status == "error" and "refused" in result.message
    assert {p: p.read_bytes() for p in (path, elsewhere)} == before


def test_undo_of_a_file_that_is_not_a_journal_is_one_line(tmp_path):
    fake = tmp_path / "fake.jsonl"
    fake.write_text('{"path": "/music/a.flac", "old": [], "new": ["Jazz"]}\n')
    result = run("undo", fake, "--write")
    assert result.exit_code == 2 and "not a genre-tagger journal" in result.output


# --------------------------------------------------------------------------- bundles


def _huge_npz() -> bytes:
    """An npz whose one array claims 40 GB (its data need not be there: the header tells)."""
    import io
    import zipfile

    import numpy as np

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**10,)})
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("X.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\x00" * 1000)
    return npz.getvalue()


def _edit(models: Path, name: str, change) -> None:
    import json

    meta_path = models / name / "bundle.json"
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))


BREAKAGES = {
    "a NUL in the model name": ("knn", lambda meta: meta.update(model="knn\u0000evil"), "malformed"),
    "files as a list": ("knn", lambda meta: meta.update(files=["arrays.npz"]), "malformed"),
    "an ensemble with no members": ("ensemble", lambda meta: meta.update(members=[], weights=[]), "malformed"),
    "an ensemble naming itself": ("ensemble", lambda meta: meta.update(members=["ensemble", "knn"]), "names itself"),
    "a member outside the folder": ("ensemble", lambda meta: meta.update(members=["../elsewhere", "knn"]),
                                    "not a bundle folder"),
    "a member named twice": ("ensemble", lambda meta: meta.update(members=["knn", "knn"]), "twice"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_every_malformed_bundle_is_a_one_line_error(breakage, tmp_path):
    import shutil

    name, change, words = BREAKAGES[breakage]
    models = tmp_path / "models"
    shutil.copytree(TINY[0], models)
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(models / "knn" / "bundle.json", tmp_path / "elsewhere" / "bundle.json")
    _edit(models, name, change)
    track = audiofactory.write(tmp_path / "a.wav", audiofactory.noise(4, amplitude=0.3))
    done = run("scan", track, "--models-dir", models, "--model", name)
    assert done.exit_code == 2, done.output
    message = " ".join(done.output.split())
    assert "Traceback" not in done.output and message.count("error:") == 1 and words in message, message


def _damage_file(models: Path, damage: str, outside: Path) -> tuple[str, str]:
    """Damage a file of a tiny bundle: ``(model, words the error must say)``."""
    import hashlib

    if damage == "a file named outside itself":
        _edit(models, "knn", lambda meta: meta["files"].update({"../secret": "0" * 64}))
        return "knn", "outside itself"
    if damage == "a symbolic link out of the bundle":
        target = outside / "arrays.npz"
        (models / "knn" / "arrays.npz").rename(target)
        (models / "knn" / "arrays.npz").symlink_to(target)
        return "knn", "leads outside the bundle"
    if damage == "a FIFO in a file's place":
        (models / "knn" / "arrays.npz").unlink()
        os.mkfifo(models / "knn" / "arrays.npz")
        return "knn", "not a regular file"
    booster = models / "lightgbm" / "booster.txt"  # a text that is not UTF-8, its checksum updated
    booster.write_bytes(b"tree\xff\xfe" + booster.read_bytes())
    _edit(models, "lightgbm", lambda meta: meta["files"].update(
        {"booster.txt": hashlib.sha256(booster.read_bytes()).hexdigest()}))
    return "lightgbm", "not UTF-8"


@pytest.mark.parametrize("damage", ["a file named outside itself", "a symbolic link out of the bundle",
                                    "a FIFO in a file's place", "a text that is not UTF-8"])
def test_a_bundle_is_read_only_from_its_own_regular_files(damage, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(TINY[0], models)
    (tmp_path / "outside").mkdir()
    name, words = _damage_file(models, damage, tmp_path / "outside")
    track = audiofactory.write(tmp_path / "a.wav", audiofactory.noise(4, amplitude=0.3))
    done = run("scan", track, "--models-dir", models, "--model", name)
    message = " ".join(done.output.split())
    assert done.exit_code == 2 and "Traceback" not in done.output and words in message, message


def test_an_array_that_would_inflate_past_the_limit_is_refused_from_its_header(tmp_path):
    import hashlib
    import shutil

    models = tmp_path / "models"
    shutil.copytree(TINY[0], models)
    data = _huge_npz()
    (models / "knn" / "arrays.npz").write_bytes(data)
    _edit(models, "knn", lambda meta: meta["files"].update({"arrays.npz": hashlib.sha256(data).hexdigest()}))
    track = audiofactory.write(tmp_path / "a.wav", audiofactory.noise(4, amplitude=0.3))
    done = run("scan", track, "--models-dir", models, "--model", "knn")
    assert done.exit_code == 2 and "unreadable arrays" in done.output and "MB once read" in " ".join(done.output.split())
