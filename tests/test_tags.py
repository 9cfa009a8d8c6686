"""Genre tags: reading, planning, writing safely (audio and other tags untouched), journal and undo."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import av
import mutagen
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, RVA2, TALB, TIT2, TPE1, TSOP, TXXX
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm

from genre_tagger.tagging import tags
from genre_tagger.tagging.journal import Journal, default_path, tag_file, undo
from genre_tagger.tagging.tags import (
    DEFAULT_GENRE_NAMES,
    FileStamp,
    TagError,
    plan_genres,
    read_genres,
    remove_genres,
    stamp,
    stored_genres,
    write_genres,
)

FORMATS = ["mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff"]
ID3_FORMATS = ["mp3", "wav", "aiff"]
SECONDS = 4.0
COVER = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --------------------------------------------------------------------------- helpers


def decode(path: Path) -> np.ndarray:
    """Every decoded sample of the first audio stream, concatenated."""
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    return np.concatenate(frames, axis=1)


def packets(path: Path) -> list[bytes]:
    """The compressed (or PCM) payload of every audio packet, as demuxed."""
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def add_other_tags(path: Path) -> None:
    """Title, artist, album, cover art and ReplayGain, each the way its format holds them."""
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    t = audio.tags
    if isinstance(t, ID3):
        t.add(TIT2(encoding=3, text="A Title"))
        t.add(TPE1(encoding=3, text=["Artist One", "Artist Two"]))
        t.add(TALB(encoding=3, text="Ålbum"))
        t.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=COVER))
        t.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text="-6.50 dB"))
        audio.save()
    elif isinstance(audio, MP4):
        t["\xa9nam"] = "A Title"
        t["\xa9ART"] = ["Artist One", "Artist Two"]
        t["\xa9alb"] = "Ålbum"
        t["covr"] = [MP4Cover(COVER, imageformat=MP4Cover.FORMAT_PNG)]
        t["----:com.apple.iTunes:replaygain_track_gain"] = [MP4FreeForm(b"-6.50 dB")]
        audio.save()
    else:  # Vorbis comments
        t["TITLE"] = "A Title"
        t["ARTIST"] = ["Artist One", "Artist Two"]
        t["ALBUM"] = "Ålbum"
        t["REPLAYGAIN_TRACK_GAIN"] = "-6.50 dB"
        if isinstance(audio, FLAC):
            picture = Picture()
            picture.type, picture.mime, picture.data = 3, "image/png", COVER
            audio.add_picture(picture)
        audio.save()


def other_tags(path: Path) -> object:
    """Every tag except the genre, in a comparable form."""
    audio = mutagen.File(path)
    t = audio.tags
    result: dict = {}
    if t is not None:
        if isinstance(t, ID3):
            result = {key: repr(frame) for key, frame in t.items() if not key.startswith("TCON")}
        elif isinstance(audio, MP4):
            result = {key: repr(value) for key, value in t.items() if key != "\xa9gen"}
        else:
            result = {"comments": sorted((k.lower(), v) for k, v in t if k.lower() != "genre")}
    if isinstance(audio, FLAC):
        result["pictures"] = [(p.type, p.mime, p.data) for p in audio.pictures]
    return result


def snapshot(path: Path) -> tuple:
    return decode(path), packets(path), other_tags(path)


def assert_same_audio_and_tags(path: Path, before: tuple) -> None:
    samples, payload, others = before
    after = decode(path)
    assert after.dtype == samples.dtype and after.shape == samples.shape
    assert np.array_equal(after, samples), "decoded audio changed"
    assert packets(path) == payload, "audio packets changed"
    assert other_tags(path) == others, "a tag other than the genre changed"


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(tags.TEMP_SUFFIX)]


@pytest.fixture
def track(make_audio):
    """A ~4 s file of a format with title/artist/album/cover/ReplayGain tags set."""

    def make(fmt: str, name: str = "track") -> Path:
        path = make_audio(f"{name}.{fmt}", seconds=SECONDS)
        add_other_tags(path)
        return path

    return make


# --------------------------------------------------------------------------- every format


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_read_remove_keep_audio_and_other_tags(track, fmt):
    path = track(fmt)
    path.chmod(0o640)
    before = snapshot(path)
    assert read_genres(path) == []

    write_genres(path, ["Hip-Hop"])
    assert read_genres(path) == ["Hip-Hop"]
    assert_same_audio_and_tags(path, before)

    write_genres(path, ["Rock", "Jazz"])
    assert read_genres(path) == ["Rock", "Jazz"]

    remove_genres(path)
    assert read_genres(path) == []
    assert_same_audio_and_tags(path, before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert leftovers(path.parent) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_policies(track, fmt):
    path = track(fmt)
    with Journal(path.parent / "journal.jsonl") as journal:
        assert tag_file(journal, path, "Blues", policy="keep") == ["Blues"]
        assert tag_file(journal, path, "Jazz", policy="keep") is None
        assert read_genres(path) == ["Blues"]
        assert tag_file(journal, path, "Jazz", policy="append") == ["Blues", "Jazz"]
        assert tag_file(journal, path, "jazz", policy="append") is None
        assert read_genres(path) == ["Blues", "Jazz"]
        assert tag_file(journal, path, "Metal", policy="overwrite") == ["Metal"]
        assert tag_file(journal, path, "Metal", policy="overwrite") is None
    assert read_genres(path) == ["Metal"]
    records = [json.loads(line) for line in (path.parent / "journal.jsonl").read_text().splitlines()]
    assert len([record for record in records if "path" in record]) == 3  # one entry per write
    assert len([record for record in records if "done" in record]) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_stamp_mismatch_refuses_to_write(track, fmt):
    path = track(fmt)
    analysed = stamp(path)
    os.utime(path, ns=(analysed.mtime_ns, analysed.mtime_ns + 1_000_000_000))  # touched after analysis
    data = path.read_bytes()
    with pytest.raises(TagError, match="changed since it was analysed"):
        write_genres(path, ["Rock"], expect=analysed)
    assert path.read_bytes() == data
    write_genres(path, ["Rock"], expect=stamp(path))
    assert read_genres(path) == ["Rock"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_journal_and_undo_restore_old_genres(track, fmt):
    fresh = track(fmt, "fresh")  # no genre before
    tagged = track(fmt, "tagged")
    write_genres(tagged, ["Blues", "Soul"])
    before_fresh, before_tagged = snapshot(fresh), read_genres(tagged)
    journal_path = fresh.parent / "genre-tagger.journal"
    with Journal(journal_path) as journal:
        assert tag_file(journal, fresh, "Jazz", policy="overwrite") == ["Jazz"]
        assert tag_file(journal, tagged, "Jazz", policy="overwrite") == ["Jazz"]
        assert tag_file(journal, tagged, "Rock", policy="append") == ["Jazz", "Rock"]
    records = [json.loads(line) for line in journal_path.read_text().splitlines()]
    entries = [record for record in records if "path" in record]
    assert [e["old"] for e in entries] == [[], ["Blues", "Soul"], ["Jazz"]]
    assert Path(entries[0]["path"]).is_absolute()

    results = undo(journal_path)
    assert [r.status for r in results] == ["restored"] * 3
    assert read_genres(fresh) == []
    assert read_genres(tagged) == before_tagged == ["Blues", "Soul"]
    assert_same_audio_and_tags(fresh, before_fresh)
    # undoing again changes nothing: the intermediate ["Jazz"] is no longer there
    assert [r.status for r in undo(journal_path)] == ["changed", "unchanged", "unchanged"]
    assert read_genres(tagged) == ["Blues", "Soul"]


def test_dry_runs_change_nothing(track, tmp_path, monkeypatch):
    path = track("opus")
    data = path.read_bytes()
    assert tag_file(None, path, "Jazz", policy="keep", dry_run=True) == ["Jazz"]
    assert path.read_bytes() == data
    with pytest.raises(ValueError, match="needs a journal"):
        tag_file(None, path, "Jazz")
    journal_path = tmp_path / "j.jsonl"
    with Journal(journal_path) as journal:
        tag_file(journal, path, "Jazz")
    data = path.read_bytes()
    assert [r.status for r in undo(journal_path, dry_run=True)] == ["would restore"]
    assert path.read_bytes() == data
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_path().parent == tmp_path / "data" / "genre-tagger" / "journals"


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_undo_leaves_alone_a_file_changed_since(track, fmt):
    changed, kept = track(fmt, "changed"), track(fmt, "kept")
    journal_path = changed.parent / "journal.jsonl"
    with Journal(journal_path) as journal:
        tag_file(journal, changed, "Jazz")
        tag_file(journal, kept, "Jazz")
    write_genres(changed, ["Metal"])  # the user retagged it by hand
    results = {Path(r.path).name: r for r in undo(journal_path)}
    assert results[changed.name].status == "changed"
    assert "left alone" in results[changed.name].message
    assert read_genres(changed) == ["Metal"]
    assert results[kept.name].status == "restored"
    assert read_genres(kept) == []


def test_undo_reports_errors_and_torn_lines_without_stopping(track, tmp_path):
    path = track("flac")
    journal_path = tmp_path / "journal.jsonl"
    with Journal(journal_path) as journal:
        tag_file(journal, path, "Jazz")
        journal.record(tmp_path / "gone.flac", [], ["Rock"])  # a file deleted since
        journal.record(path, ["Jazz"], ["Pop"])  # journalled, but the write never happened (crash)
    with open(journal_path, "a") as f:
        f.write('{"path": "/x.flac", "old": [')  # torn last line
    results = undo(journal_path)
    assert [r.status for r in results] == ["warning", "unchanged", "error", "restored"]
    assert "line 7: a partial line" in results[0].message
    assert "gone.flac" in results[2].message
    assert read_genres(path) == []


# --------------------------------------------------------------------------- ID3 details


@pytest.mark.parametrize("fmt", ID3_FORMATS)
def test_id3v23_joins_genres(track, fmt):
    path = track(fmt)
    audio = mutagen.File(path)
    audio.tags.update_to_v23()
    audio.save(v2_version=3)
    before = snapshot(path)
    assert stored_genres(path, ["Rock", "Pop"], id3_version=3, id3_join=" / ") == ["Rock / Pop"]
    write_genres(path, ["Rock", "Pop"], id3_version=3, id3_join=" / ")
    assert read_genres(path) == ["Rock / Pop"]
    assert mutagen.File(path).tags.version == (2, 3, 0)
    assert_same_audio_and_tags(path, before)
    write_genres(path, ["Rock", "Pop"], id3_version=3)  # default join "; "
    assert read_genres(path) == ["Rock; Pop"]
    assert plan_genres(read_genres(path), "pop", "append") is None  # parts of a joined value count


def test_new_id3_tag_uses_id3_version(make_audio):
    path = make_audio("bare.mp3", seconds=SECONDS)
    mutagen.id3.delete(str(path))
    write_genres(path, ["Rock", "Pop"], id3_version=3)
    assert path.read_bytes()[:4] == b"ID3\x03"
    assert read_genres(path) == ["Rock; Pop"]


def test_existing_id3v24_is_not_downgraded(track):
    """Converting to 2.3 would drop v2.4-only frames such as RVA2 and TSOP."""
    path = track("mp3")
    audio = MP3(path)
    audio.tags.add(TSOP(encoding=3, text="One, Artist"))
    audio.tags.add(RVA2(desc="track", channel=1, gain=-6.5, peak=0.9))
    audio.save()
    before = snapshot(path)
    write_genres(path, ["Rock", "Pop"], id3_version=3)
    assert MP3(path).tags.version == (2, 4, 0)
    assert read_genres(path) == ["Rock", "Pop"]
    assert_same_audio_and_tags(path, before)


def test_mp3_id3v1_tag_keeps_all_but_its_genre_byte(track):
    path = track("mp3")
    audio = MP3(path)
    audio.save(v1=2)  # add an ID3v1 tag
    with open(path, "r+b") as f:  # make ID3v1 differ from ID3v2, as old taggers leave it
        f.seek(-125, os.SEEK_END)
        f.write(b"Old v1 title".ljust(30, b"\0"))
    v1 = path.read_bytes()[-128:]
    assert v1[:3] == b"TAG"
    write_genres(path, ["Jazz"])
    after = path.read_bytes()[-128:]
    assert after[:127] == v1[:127]
    assert after[127] == mutagen.id3.TCON.GENRES.index("Jazz")
    remove_genres(path)
    assert path.read_bytes()[-128:] == v1[:127] + b"\xff"
    assert read_genres(path) == []


def test_mp3_genre_from_id3v1_only(make_audio):
    path = make_audio("v1.mp3", seconds=SECONDS)
    mutagen.id3.delete(str(path))
    with open(path, "ab") as f:
        f.write(b"TAG" + b"Title".ljust(30, b"\0") + b"\0" * 30 * 2 + b"1999" + b"\0" * 30 + bytes([17]))
    assert read_genres(path) == ["Rock"]
    assert plan_genres(read_genres(path), "Jazz", "keep") is None
    write_genres(path, ["Jazz"])
    assert read_genres(path) == ["Jazz"]
    assert path.read_bytes()[-128:-1].startswith(b"TAGTitle")


def test_undo_of_a_bare_mp3_is_byte_identical(make_audio, tmp_path):
    path = make_audio("bare.mp3", seconds=SECONDS)
    mutagen.id3.delete(str(path))
    original = path.read_bytes()
    with Journal(tmp_path / "j.jsonl") as journal:
        tag_file(journal, path, "Reggae")
    assert path.read_bytes() != original
    assert [r.status for r in undo(tmp_path / "j.jsonl")] == ["restored"]
    assert path.read_bytes() == original


def test_m4a_with_moov_before_mdat(make_audio, tmp_path):
    """Growing a moov atom that precedes the audio moves the audio: chunk offsets must follow."""
    source = make_audio("source.m4a", seconds=SECONDS)
    path = tmp_path / "faststart.m4a"
    with av.open(str(source)) as src, av.open(str(path), "w", format="ipod", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(audio=0):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    add_other_tags(path)
    before = snapshot(path)
    write_genres(path, [f"Genre {i} " + "x" * 200 for i in range(20)])  # far more than any padding
    assert len(read_genres(path)) == 20
    assert_same_audio_and_tags(path, before)


# --------------------------------------------------------------------------- safety


def test_au_cannot_hold_tags(make_audio):
    path = make_audio("x.au", seconds=1)
    data = path.read_bytes()
    with pytest.raises(TagError, match=r"x\.au: this format cannot hold tags"):
        write_genres(path, ["Rock"])
    with pytest.raises(TagError, match="cannot hold tags"):
        read_genres(path)
    assert path.read_bytes() == data


def test_content_must_match_extension(make_audio):
    wav = make_audio("x.wav", seconds=1)
    path = wav.rename(wav.with_suffix(".mp3"))
    data = path.read_bytes()
    with pytest.raises(TagError, match="content is not"):
        write_genres(path, ["Rock"])
    assert path.read_bytes() == data


def test_read_only_file_is_refused_even_for_root(track):
    path = track("flac")
    data = path.read_bytes()
    path.chmod(0o444)
    try:
        with pytest.raises(TagError, match="permission denied"):
            write_genres(path, ["Rock"])
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        assert leftovers(path.parent) == []
    finally:
        path.chmod(0o644)


def test_read_only_directory_is_refused(track, tmp_path):
    path = track("ogg", "sub/track")
    data = path.read_bytes()
    path.parent.chmod(0o555)
    try:
        with pytest.raises(TagError, match="permission denied"):
            write_genres(path, ["Rock"])
    finally:
        path.parent.chmod(0o755)
    assert path.read_bytes() == data
    assert leftovers(path.parent) == []


@pytest.mark.skipif(AS_ROOT, reason="root may write where the permission bits say no; covered by the tests above")
def test_read_only_directory_for_an_ordinary_user(track):
    path = track("mp3", "sub2/track")
    path.parent.chmod(0o500)  # owner may read and enter, not write
    try:
        with pytest.raises(TagError, match="permission denied"):
            write_genres(path, ["Rock"])
    finally:
        path.parent.chmod(0o755)


def _fail(*args, **kwargs):
    raise OSError(errno.EACCES, "Permission denied")


@pytest.mark.parametrize(
    "target",
    ["os.replace", "genre_tagger.tagging.tags._copy_metadata", "genre_tagger.tagging.mp4.write_mp4",
     "genre_tagger.tagging.tags._genres_of"],
)
def test_any_failure_leaves_the_original_untouched(track, monkeypatch, target):
    """Failures at every step: the file is not replaced and no temporary file is left behind.

    Works as root too (where permission bits cannot make the rename fail): the failures
    are injected.
    """
    path = track("m4a")
    write_genres(path, ["Blues"])
    data, mode = path.read_bytes(), path.stat().st_mode
    if target.endswith("_genres_of"):  # the copy reads back something else: verification fails
        monkeypatch.setattr(target, lambda audio: ["Something else"])
        match = "read back"
    else:
        monkeypatch.setattr(target, _fail)
        match = "permission denied"
    with pytest.raises(TagError, match=match):
        write_genres(path, ["Rock"])
    monkeypatch.undo()
    assert path.read_bytes() == data
    assert path.stat().st_mode == mode
    assert read_genres(path) == ["Blues"]
    assert leftovers(path.parent) == []


def test_symlink_is_followed_and_kept(track, tmp_path):
    path = track("flac")
    link = tmp_path / "link.flac"
    link.symlink_to(path)
    write_genres(link, ["Rock"])
    assert link.is_symlink()
    assert read_genres(path) == ["Rock"]


def test_mtime_moves_on_so_backups_notice(track):
    path = track("wav")
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    old = stamp(path)
    write_genres(path, ["Rock"])
    assert stamp(path).mtime_ns > old.mtime_ns
    assert stamp(path) == FileStamp(path.stat().st_size, path.stat().st_mtime_ns)


def test_invalid_arguments(track):
    path = track("flac")
    with pytest.raises(ValueError):
        write_genres(path, [""])
    with pytest.raises(ValueError):
        write_genres(path, ["a\0b"])
    with pytest.raises(ValueError):
        write_genres(path, ["Rock"], id3_version=2)
    with pytest.raises(ValueError):
        plan_genres([], "Rock", "replace")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- planning


def test_default_genre_names():
    assert DEFAULT_GENRE_NAMES["hiphop"] == "Hip-Hop"
    assert sorted(DEFAULT_GENRE_NAMES) == sorted(
        ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
    )


def test_plan_examples():
    assert plan_genres([], "Rock", "keep") == ["Rock"]
    assert plan_genres(["Pop"], "Rock", "keep") is None
    assert plan_genres(["Pop"], "Rock", "overwrite") == ["Rock"]
    assert plan_genres(["Rock"], "Rock", "overwrite") is None
    assert plan_genres(["rock"], "Rock", "overwrite") == ["Rock"]
    assert plan_genres(["Pop"], "Rock", "append") == ["Pop", "Rock"]
    assert plan_genres(["Pop", "ROCK"], "rock", "append") is None
    assert plan_genres(["Pop"], ["Rock", "pop", "Jazz"], "append") == ["Pop", "Rock", "Jazz"]


genre = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(str.strip)
policy = st.sampled_from(["keep", "overwrite", "append"])


@given(existing=st.lists(genre, max_size=4), new=genre, policy=policy)
def test_plan_properties(existing, new, policy):
    planned = plan_genres(existing, new, policy)
    if planned is None:
        assert existing  # nothing to write only when something is there
        if policy == "append":
            wanted = new.strip().casefold()
            parts = [{v.strip().casefold(), *(p.strip().casefold() for p in v.split(";"))} for v in existing]
            assert any(wanted in values for values in parts)
        return
    assert any(g.casefold() == new.strip().casefold() for g in planned)
    if policy == "keep":
        assert not existing and planned == [new.strip()]
    if policy == "append":
        assert planned[: len(existing)] == existing
    # planning again on the result has nothing left to do
    assert plan_genres(planned, new, policy) is None
