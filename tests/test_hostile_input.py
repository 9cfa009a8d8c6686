"""Hostile input never crashes a scan (issue #28): each bad file is one line naming it and
the cause, the scan goes on with the others, and nothing a user owns is damaged."""

from __future__ import annotations

import base64
import ctypes
import errno
import io
import json
import math
import struct
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

import audiofactory
from genre_tagger.cli import main
from genre_tagger.pipeline import audio
from genre_tagger.pipeline.dispatch import analyse_many
from test_reliability import KillsItsWorker

CLI = [sys.executable, "-c", "import sys; from genre_tagger.cli import main; sys.argv[0] = 'genre-tagger'; main()"]
LOAD = """
import sys
from genre_tagger.cli import main
from genre_tagger.pipeline import audio
try:
    y = audio.load(sys.argv[1])
except audio.AudioError as error:
    print(error)
else:
    print(len(y), float((y ** 2).mean() ** 0.5))
"""


def first_channel_tone(channels: int, seconds: float = 1.0, rate: int = 22050) -> np.ndarray:
    """``[channels, n]``: a 440 Hz tone of amplitude 0.3 in the first channel, silence in the others."""
    y = np.zeros((channels, int(seconds * rate)), dtype=np.float32)
    y[0] = audiofactory.tone(seconds, rate)
    return y


def encode_surround(path: Path, y: np.ndarray, codec: str, container: str, rate: int, layout: str) -> Path:
    """Encode ``y`` ``[channels, n]`` with PyAV's ``codec`` in ``layout`` (7.1 and others that
    :mod:`genre_tagger.pipeline.encode` does not make); frames are handed over packed, since
    PyAV miscounts the planes of a planar frame of 8 channels."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate)

        def mux(frame):
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    out.mux(packet)

        for start in range(0, y.shape[1], 4096):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[:, start : start + 4096].T).reshape(1, -1),
                                               format="flt", layout=layout)
            frame.sample_rate = 22050
            mux(frame)
        mux(None)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def load_elsewhere(path: Path) -> str:
    """``audio.load(path)`` in a child process (a crash fails the test, not the test run):
    the number of samples and their RMS, or the AudioError's line."""
    done = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"rc {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout.strip()


# --------------------------------------------------------------------------- many channels (#28, 4)


def surround_file(tmp_path: Path, kind: str) -> tuple[Path, int]:
    if kind == "5.1 flac":
        return audiofactory.write(tmp_path / "surround.flac", first_channel_tone(6)), 6
    if kind == "7.1 opus":
        return encode_surround(tmp_path / "surround.opus", first_channel_tone(8), "libopus", "ogg", 48000, "7.1"), 8
    if kind == "7.1 m4a":
        return encode_surround(tmp_path / "surround.m4a", first_channel_tone(8), "aac", "ipod", 44100, "7.1"), 8
    channels = int(kind.split()[0])  # Ogg Vorbis, by libsndfile: up to 255 channels, as a hostile header claims
    path = tmp_path / f"channels{channels}.ogg"
    soundfile.write(path, first_channel_tone(channels).T, 22050, format="OGG", subtype="VORBIS")
    return path, channels


@pytest.mark.parametrize("kind", ["5.1 flac", "7.1 opus", "7.1 m4a", "8 vorbis", "255 vorbis"])
def test_every_channel_count_is_mixed_down_to_the_mean(tmp_path, kind):
    path, channels = surround_file(tmp_path, kind)
    n, rms = load_elsewhere(path).split()
    assert abs(int(n) / audio.SAMPLE_RATE - 1.0) < 0.1
    # the tone's RMS (0.3 / sqrt 2) shared among the channels, as librosa.to_mono averages them
    assert float(rms) == pytest.approx(0.3 / math.sqrt(2) / channels, rel=0.15)


class SegfaultsItsWorker(KillsItsWorker):
    """A "file" whose arrival in a worker process crashes it in native code (a read of
    address 0), as a decoder's bug would."""

    def __reduce__(self):
        return (ctypes.string_at, (0,))  # run by the worker when it unpickles its task


def test_a_crash_in_native_code_costs_one_file_at_jobs_1(tmp_path):
    files = [tmp_path / f"{name}.mp3" for name in "abc"]
    for path in files:
        path.write_bytes(b"")  # refused in a blink: what matters is that each comes back
    crash = SegfaultsItsWorker(str(tmp_path / "crash.mp3"))
    results = {str(r.path): r.error for r in analyse_many([files[0], crash, *files[1:]], ["gtzan57"], 20, jobs=1)}
    assert results == {
        **{str(path): f"{path}: empty file" for path in files},
        str(crash): f"{crash}: the analysis process crashed on this file",
    }


def test_a_scan_of_7_1_audio_at_jobs_1_reports_every_file(tmp_path, tiny_models):
    music = tmp_path / "Music"
    music.mkdir()
    encode_surround(music / "surround.opus", np.tile(audiofactory.music_like(4), (8, 1)), "libopus", "ogg", 48000, "7.1")
    audiofactory.write(music / "stereo.flac", np.tile(audiofactory.music_like(4, seed=1), (2, 1)))
    report = tmp_path / "r.csv"
    done = subprocess.run([*CLI, "scan", str(music), "--models-dir", str(tiny_models), "--model", "knn", "--no-cache",
                           "--jobs", "1", "--report", str(report)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    text = report.read_text()
    assert "surround.opus" in text and "stereo.flac" in text and "failed" not in text


# --------------------------------------------------------------------------- odd sample formats (#28, 10)


def write_wav(path: Path, samples: np.ndarray, format_tag: int, rate: int = 22050) -> Path:
    """A mono WAV of ``samples`` as they are (format tag 1: integer PCM, 3: IEEE float),
    whatever their width: libsndfile writes no 64-bit integers."""
    data = samples.tobytes()
    bits = samples.dtype.itemsize * 8
    fmt = struct.pack("<HHIIHH", format_tag, 1, rate, rate * bits // 8, bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_64_bit_integer_pcm_decodes(tmp_path):
    tone = audiofactory.tone(2.0).astype(np.float64)
    path = write_wav(tmp_path / "s64.wav", np.round(tone * 2**63).astype(np.int64), 1)
    np.testing.assert_allclose(audio.load(path), tone, atol=1e-6)


def test_floating_point_samples_far_beyond_full_scale_are_one_line(tmp_path):
    path = write_wav(tmp_path / "huge.wav", np.full(4 * 22050, 3e38, np.float32), 3)
    with pytest.raises(audio.AudioError, match="reach 3e\\+38, far beyond full scale") as raised:
        audio.load(path)
    assert str(raised.value).startswith(f"{path}: ")


# --------------------------------------------------------------------------- a full disk (#28, 5)


class FillingDisk(io.RawIOBase):
    """A file on a disk with room for ``room`` bytes: writes past it fail with ENOSPC."""

    def __init__(self, room: int):
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return len(data)


def test_a_disk_filling_during_a_scan_loses_the_outputs_not_the_summary(tmp_path, tiny_models, monkeypatch):
    from genre_tagger.tagging import report

    real_open = open

    def open_on_a_filling_disk(path, mode="r", *args, **kwargs):
        if "w" not in mode:
            return real_open(path, mode, *args, **kwargs)
        # room for check_target's trial header, not for a JSON line or a whole report
        return io.TextIOWrapper(io.BufferedWriter(FillingDisk(200)), encoding="utf-8", newline=kwargs.get("newline"))

    monkeypatch.setattr(report, "open", open_on_a_filling_disk, raising=False)
    track = audiofactory.write(tmp_path / "a.wav", audiofactory.music_like(4))
    json_path, report_path = tmp_path / "out.jsonl", tmp_path / "r.csv"
    result = CliRunner().invoke(main, ["scan", str(track), "--models-dir", str(tiny_models), "--model", "knn",
                                       "--no-cache", "--json", str(json_path), "--report", str(report_path)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert f"{json_path}: cannot be written (No space left on device): no more JSON lines" in result.output
    assert f"{report_path}: cannot be written (No space left on device)" in result.output
    assert "Scan summary" in result.output and "1 files" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- names (#28, 9)


def test_a_name_that_is_not_utf8_gives_a_valid_json_line_that_holds_it_exactly():
    from genre_tagger.tagging.report import json_line
    from genre_tagger.tagging.scan import TrackResult

    raw = b"/music/caf\xe9 \xff.mp3"
    name = os.fsdecode(raw)
    line = json_line(TrackResult(name, status="failed", error=f"{name}: empty file")).encode("utf-8")
    record = json.loads(line.decode("utf-8"))  # strict UTF-8
    assert record["path"] == "/music/caf\ufffd \ufffd.mp3" and record["error"].startswith(record["path"])
    assert base64.b64decode(record["path_bytes"]) == raw
    assert "path_bytes" not in json.loads(json_line(TrackResult("/music/café.mp3", status="failed")))


@pytest.mark.parametrize("length", [229, 255])
def test_a_long_name_is_tagged_and_its_leftover_copy_cleaned_up(tmp_path, length):
    from genre_tagger.tagging import library, tags

    name = "é" * ((length - 5) // 2) + "x" * ((length - 5) % 2) + ".flac"  # two bytes a character
    assert len(os.fsencode(name)) == length
    path = audiofactory.write(tmp_path / name, audiofactory.music_like(3))
    tags.write_genres(path, ["Metal"])
    assert tags.read_genres(path) == ["Metal"] and sorted(os.listdir(tmp_path)) == [name]

    leftover = tmp_path / f"{tags.temporary_prefix(name)}abcd1234{tags.TEMP_SUFFIX}"  # what a killed write leaves
    leftover.write_bytes(b"half a copy")
    assert leftover.name.startswith(".") and len(os.fsencode(leftover.name)) <= 255
    assert library.StaleTemporaries(older_than_s=0).remove(path) == [leftover]
    assert sorted(os.listdir(tmp_path)) == [name]


def test_control_characters_in_names_are_printed_as_escapes(tmp_path, tiny_models):
    music = tmp_path / "Music"
    music.mkdir()
    forged = "a\nfailed other.mp3: forged\x1b[2J.wav"
    (music / forged).write_bytes(b"not audio at all" * 100)
    audiofactory.write(music / "b\nwould tag c.wav: (none) -> Jazz\x1b]0;title\x07.wav", audiofactory.music_like(4))
    result = CliRunner().invoke(main, ["scan", str(music), "--models-dir", str(tiny_models), "--model", "knn",
                                       "--no-cache"])
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert not any(line.startswith(("failed other.mp3", "would tag c.wav")) for line in result.output.splitlines())
    assert "forged\\x1b[2J.wav: not an audio file" in result.output
    assert "b\\nwould tag c.wav: (none) -> Jazz\\x1b]0;title\\x07.wav: (none) -> " in result.output


# --------------------------------------------------------------------------- smaller ones (#28, 10)


def test_a_track_a_few_samples_short_of_a_segment_says_so_in_samples():
    from genre_tagger import segments

    with pytest.raises(segments.TooShortError) as raised:
        segments.split(np.zeros(segments.SEGMENT_SAMPLES - 1, np.float32))
    assert f"({segments.SEGMENT_SAMPLES - 1} samples) long" in str(raised.value)
    assert f"({segments.SEGMENT_SAMPLES} samples) segment" in str(raised.value)


def test_a_report_in_proc_is_not_said_to_lack_space():
    from genre_tagger.tagging.report import ReportError, check_target

    with pytest.raises(ReportError) as raised:
        check_target("/proc/report.csv")
    assert "No space left" not in str(raised.value)


def test_a_skipped_broken_link_is_said_in_the_summary(tmp_path, tiny_models):
    music = tmp_path / "Music"
    audiofactory.write(music / "a.wav", audiofactory.music_like(4))
    (music / "gone.mp3").symlink_to(music / "nowhere.mp3")
    result = CliRunner().invoke(main, ["scan", str(music), "--models-dir", str(tiny_models), "--model", "knn",
                                       "--no-cache"])
    assert result.exit_code == 1, result.output
    assert "1 skipped (files or folders that could not be read" in result.output


def test_a_journal_failing_after_a_write_says_the_file_was_tagged(tmp_path, tiny_models, monkeypatch):
    from genre_tagger.tagging import journal
    from genre_tagger.tagging.journal import JournalError

    track = audiofactory.write(tmp_path / "Music" / "a.flac", audiofactory.music_like(4))

    def full(self, path, *args, **kwargs):
        raise JournalError(f"{self.path}: cannot be written (No space left on device)")

    monkeypatch.setattr(journal.Journal, "done", full)
    result = CliRunner().invoke(main, ["scan", str(track.parent), "--models-dir", str(tiny_models), "--model", "knn",
                                       "--no-cache", "--write", "--journal", str(tmp_path / "j.jsonl")])
    assert result.exit_code == 1, result.output
    assert f"{track}: " in result.output and "was tagged" in result.output and "not tagged" not in result.output
    assert "what finished is cached" not in result.output and "nothing is cached (--no-cache)" in result.output


def test_a_ctrl_c_while_workers_start_prints_no_traceback(capfd):
    from genre_tagger.pipeline import workers

    with workers._pool(2) as pool:
        futures = [workers._submit(pool, abs, -n) for n in range(2)]
        for process in list(pool._processes.values()):
            os.kill(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches every process of the group
        assert [future.result(timeout=120) for future in futures] == [0, 1]  # the workers lived on
    assert "Traceback" not in capfd.readouterr().err
