"""genre_tagger.pipeline.audio: every format to 22050 Hz mono float32, exactly where lossless."""

from __future__ import annotations

import logging
import math
import os
import struct
import tracemalloc
import wave

import librosa
import numpy as np
import pytest
import soundfile

import audiofactory
from genre_tagger.pipeline import audio
from genre_tagger.pipeline.audio import SAMPLE_RATE, AudioError

# Codec padding a decoder may leave at the ends. AAC primes 1024 samples and pads the
# last frame; an m4a without an edit list (as PyAV writes them) keeps both.
LENGTH_TOLERANCE_S = {"m4a": 0.1}
#: AAC's noise substitution draws from a generator every decoded frame advances, so after
#: skipped packets the substituted noise differs from a full decode's: within a span the
#: difference's RMS stays below this share of the signal's (-34 dB; measured on real music
#: by research/check_aac_spans.py, where no genre changed)
AAC_SPAN_RMS = 0.02
DEFAULT_LENGTH_TOLERANCE_S = 0.05


def peak_hz(y: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Frequency of the strongest spectral peak of ``y``, to 1 / duration Hz."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * sr / len(y))


def assert_mono_float32(y: np.ndarray) -> None:
    assert y.dtype == np.float32
    assert y.ndim == 1
    assert np.all(np.isfinite(y))
    assert np.abs(y).max() <= 1.0


# --- every format -------------------------------------------------------------------------


@pytest.mark.parametrize("ext", audiofactory.EXTENSIONS)
def test_every_format_decodes_to_mono_float32_of_the_right_length(make_audio, ext):
    path = make_audio(f"clip.{ext}", seconds=2.0, kind="music")
    y = audio.load(path)
    assert_mono_float32(y)
    tolerance = LENGTH_TOLERANCE_S.get(ext, DEFAULT_LENGTH_TOLERANCE_S)
    assert abs(len(y) / SAMPLE_RATE - 2.0) <= tolerance
    assert np.sqrt(np.mean(y**2)) > 0.05  # not silence


@pytest.mark.parametrize("ext", audiofactory.EXTENSIONS)
def test_a_440_hz_tone_stays_440_hz(make_audio, ext):
    # opus is encoded at 48 kHz, so this also checks the resampling back to 22050 Hz
    y = audio.load(make_audio(f"tone.{ext}", seconds=2.0, kind="tone"))
    assert peak_hz(y) == pytest.approx(440.0, abs=1.0)


def test_audio_extensions_are_lowercase_and_cover_every_test_format():
    assert all(ext == ext.lower() and ext.startswith(".") for ext in audio.AUDIO_EXTENSIONS)
    assert {f".{ext}" for ext in audiofactory.EXTENSIONS} <= audio.AUDIO_EXTENSIONS


# --- channels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ext, channels",
    # mp3 holds at most two channels
    [(ext, 2) for ext in ("mp3", "flac", "ogg", "opus", "m4a", "wav")]
    + [(ext, 6) for ext in ("flac", "ogg", "opus", "m4a", "wav")],
)
def test_channels_are_averaged(tmp_path, ext, channels):
    tone = audiofactory.tone(1.0)
    y = np.zeros((channels, len(tone)), dtype=np.float32)
    y[0] = tone  # the tone in the first channel only, silence in the others
    mono = audio.load(audiofactory.write(tmp_path / f"multi.{ext}", y))
    assert_mono_float32(mono)
    middle = mono[2000:-2000]  # away from codec fade-in and padding
    expected_rms = 0.3 / math.sqrt(2) / channels
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(expected_rms, rel=0.1)


@pytest.mark.parametrize("channels", [2, 6])
def test_downmix_is_exactly_librosas(tmp_path, channels):
    rng = np.random.default_rng(channels)
    path = tmp_path / "multi.wav"
    soundfile.write(path, rng.uniform(-0.9, 0.9, (5000, channels)), SAMPLE_RATE, subtype="FLOAT")
    expected = librosa.to_mono(soundfile.read(path, dtype="float32")[0].T)
    np.testing.assert_array_equal(audio.load(path), expected)


# --- exact scaling of integer samples ---------------------------------------------------------


@pytest.mark.parametrize(
    "ext, subtype",
    [
        ("wav", "PCM_U8"),
        ("wav", "PCM_16"),
        ("wav", "PCM_24"),
        ("wav", "PCM_32"),
        ("wav", "FLOAT"),
        ("wav", "DOUBLE"),
        ("flac", "PCM_16"),
        ("flac", "PCM_24"),
        ("aiff", "PCM_24"),
    ],
)
def test_lossless_samples_equal_soundfiles_bit_for_bit(tmp_path, ext, subtype):
    rng = np.random.default_rng(0)
    path = tmp_path / f"{subtype}.{ext}"
    soundfile.write(path, np.clip(rng.normal(0, 0.4, 8000), -1, 1), SAMPLE_RATE, subtype=subtype)
    np.testing.assert_array_equal(audio.load(path), soundfile.read(path, dtype="float32")[0])


# --- resampling -------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:'(aifc|audioop|sunau)' is deprecated:DeprecationWarning")  # librosa's audioread
@pytest.mark.parametrize("sr", [8000, 44100, 96000])
def test_other_rates_are_resampled_to_22050_like_librosa(tmp_path, sr):
    path = tmp_path / f"tone_{sr}.wav"
    n = 2 * sr
    soundfile.write(path, audiofactory.tone(2.0, sr), sr, subtype="FLOAT")
    y = audio.load(path)
    assert len(y) == math.ceil(n * SAMPLE_RATE / sr)
    assert peak_hz(y) == pytest.approx(440.0, abs=1.0)
    expected, _ = librosa.load(path, sr=SAMPLE_RATE)
    np.testing.assert_allclose(y, expected, atol=1e-5)


# --- stream() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["flac", "opus"])  # as is, and resampled from 48 kHz
@pytest.mark.parametrize("block_samples", [1, 1000, 22050, 100_000])
def test_stream_yields_full_blocks_that_add_up_to_load(make_audio, ext, block_samples):
    path = make_audio(f"clip.{ext}", seconds=2.0)
    blocks = list(audio.stream(path, block_samples))
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert all(len(b) == block_samples for b in blocks[:-1])
    assert 1 <= len(blocks[-1]) <= block_samples
    np.testing.assert_array_equal(np.concatenate(blocks), audio.load(path))


@pytest.mark.parametrize("ext,sr", [("flac", 22050), ("flac", 44100), ("mp3", 44100), ("mp3", 48000), ("m4a", 48000),
                                    ("ogg", 32000), ("opus", 48000), ("wav", 96000)])
def test_stream_only_spans_decodes_them_as_a_full_decode_does(tmp_path, ext, sr):
    """``only``: the samples inside the spans are those of a full decode (AAC's within
    :data:`AAC_SPAN_RMS`, see there), those more than a second from every span are zeros,
    and the length is the same."""
    path = audiofactory.write(tmp_path / f"clip.{ext}", np.stack([audiofactory.music_like(20.0, sr, seed=1),
                                                                 audiofactory.music_like(20.0, sr, seed=2)]), sr)
    full = audio.load(path)
    spans = [(1000, 1000 + 66149), (150_000, 150_000 + 66149), (150_000 + 66149, 150_000 + 2 * 66149),
             (len(full) - 30_000, len(full) + 5)]
    part = np.concatenate(list(audio.stream(path, 100_000, only=spans)))
    assert len(part) == len(full)
    inside, near = np.zeros(len(full), bool), np.zeros(len(full), bool)
    for start, stop in spans:
        inside[start:stop] = True
        near[max(0, start - SAMPLE_RATE):stop + SAMPLE_RATE] = True
    if ext == "m4a":
        for start, stop in spans:
            difference, signal = part[start:stop] - full[start:stop], full[start:stop]
            assert np.sqrt(np.mean(difference ** 2) / np.mean(signal ** 2)) < AAC_SPAN_RMS
    else:
        np.testing.assert_allclose(part[inside], full[inside], atol=1e-5)
    assert not part[~near].any() and full[~near].any()


@pytest.mark.parametrize("ext,skipped", [("mp3", True), ("flac", True), ("opus", True), ("m4a", True),
                                         ("ogg", False), ("wav", False)])
def test_stream_only_spans_leaves_far_packets_undecoded(tmp_path, monkeypatch, ext, skipped):
    """The codecs of SKIPPABLE_CODECS decode none of the packets far from every span; the
    others decode every packet (and convert only the frames near a span)."""
    sr = 48000 if ext == "opus" else 44100
    path = audiofactory.write(tmp_path / f"clip.{ext}", audiofactory.music_like(20.0, sr, seed=1), sr)
    decoded = []
    check = audio._check_frame
    monkeypatch.setattr(audio, "_check_frame", lambda path, frame: (decoded.append(frame.samples), check(path, frame)))
    list(audio.stream(path, 100_000))
    every = sum(decoded)
    decoded.clear()
    list(audio.stream(path, 100_000, only=[(150_000, 150_000 + 66149)]))  # 3 s of 20
    assert (sum(decoded) < every / 3) == skipped


def test_stream_blocks_are_independent_arrays(make_audio):
    first, second, *_ = audio.stream(make_audio("clip.wav", seconds=1.0), 4096)
    assert not np.shares_memory(first, second)


def test_stream_rejects_a_block_size_below_one(make_audio):
    with pytest.raises(ValueError, match="block_samples"):
        next(audio.stream(make_audio("clip.wav", seconds=1.0), 0))


def test_stream_memory_is_bounded_by_the_block_not_the_file(tmp_path):
    path = tmp_path / "long.wav"  # 60 s at 44.1 kHz: 5.3 MB once decoded at 22050 Hz
    soundfile.write(path, np.tile(audiofactory.noise(1.0, 44100), 60), 44100)
    tracemalloc.start()
    try:
        n_samples = sum(len(block) for block in audio.stream(path, 4096))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n_samples == 60 * SAMPLE_RATE
    assert peak_bytes < 1_000_000


# --- probe() -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ext, sample_rate, codec",
    [("flac", 44100, "flac"), ("mp3", 44100, "mp3"), ("opus", 48000, "opus"), ("ogg", 44100, "vorbis")],
)
def test_probe_reads_the_header(tmp_path, ext, sample_rate, codec):
    stereo = np.stack([audiofactory.tone(3.0, 44100), audiofactory.noise(3.0, 44100)])
    info = audio.probe(audiofactory.write(tmp_path / f"clip.{ext}", stereo, 44100))
    assert info == audio.Info(duration_s=pytest.approx(3.0, abs=0.05), sample_rate=sample_rate, channels=2, codec=codec)


# --- damaged files and errors ----------------------------------------------------------------------


def read_all(path):
    return list(audio.stream(path, 1000))


@pytest.mark.parametrize("decode", [audio.load, audio.probe, read_all], ids=["load", "probe", "stream"])
@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("missing.mp3", None, "file not found"),
        ("empty.wav", b"", "empty file"),
        ("noise.mp3", np.random.default_rng(0).bytes(20_000), "not an audio file"),
        ("notes.flac", b"this is a text file, not music\n" * 50, "not an audio file"),
    ],
)
def test_unreadable_files_raise_one_line_audio_errors(tmp_path, decode, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError) as caught:
        decode(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert reason in message
    assert "\n" not in message
    assert caught.value.path == str(path)


@pytest.mark.parametrize("decode", [audio.load, read_all], ids=["load", "stream"])
def test_a_valid_header_without_samples_says_so(tmp_path, decode):
    """A zero-length wav (a header, no samples) is not called damaged (#32 item 6)."""
    path = tmp_path / "zero.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(44100)
    with pytest.raises(AudioError, match=r"zero.wav: holds no audio: a valid header with no samples \(0 s of audio\)"):
        decode(path)


def test_an_unknown_codec_is_an_audio_error(tmp_path):
    fmt = struct.pack("<HHIIHH", 0x1234, 1, SAMPLE_RATE, 2 * SAMPLE_RATE, 2, 16)  # format tag 0x1234
    data = bytes(8000)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path = tmp_path / "odd.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    for decode in (audio.load, audio.probe):
        with pytest.raises(AudioError, match="odd.wav: cannot decode: FFmpeg has no decoder"):
            decode(path)


def test_a_folder_is_an_audio_error(tmp_path):
    with pytest.raises(AudioError, match="folder"):
        audio.load(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_an_audio_error(make_audio):
    path = make_audio("locked.wav", seconds=1.0)
    path.chmod(0)
    with pytest.raises(AudioError, match="permission denied"):
        audio.load(path)


@pytest.mark.parametrize("ext", ["mp3", "flac", "ogg", "wav"])
def test_a_truncated_file_decodes_the_part_that_is_there(make_audio, caplog, ext):
    path = make_audio(f"cut.{ext}", seconds=4.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="genre_tagger.pipeline.audio"):
        y = audio.load(path)
    assert_mono_float32(y)
    assert 1.0 < len(y) / SAMPLE_RATE < 3.0


def test_a_truncated_header_is_an_audio_error(make_audio):
    path = make_audio("cut.flac", seconds=1.0)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioError, match="cut.flac"):
        audio.load(path)


# --- the GTZAN clips --------------------------------------------------------------------------------


@pytest.mark.data
def test_reference_flacs_equal_soundfile_bit_for_bit(gtzan_dir):
    paths = sorted((gtzan_dir / "reference").glob("*.flac"))
    assert paths
    for path in paths:
        expected, sr = soundfile.read(path, dtype="float32")
        assert sr == SAMPLE_RATE
        np.testing.assert_array_equal(audio.load(path), expected, err_msg=path.name)


@pytest.mark.data
def test_a_gtzan_ogg_clip_decodes_to_30_seconds(gtzan_dir):
    path = sorted((gtzan_dir / "genres" / "jazz").glob("*.ogg"))[0]
    y = audio.load(path)
    assert_mono_float32(y)
    assert len(y) / SAMPLE_RATE == pytest.approx(30.0, abs=0.5)
    # FFmpeg's Vorbis decoder and libvorbis (soundfile) agree to float rounding
    expected, _ = soundfile.read(path, dtype="float32")
    assert len(y) == len(expected)
    assert np.abs(y - expected).max() < 1e-4
    assert audio.probe(path).duration_s == pytest.approx(len(y) / SAMPLE_RATE, abs=0.01)
