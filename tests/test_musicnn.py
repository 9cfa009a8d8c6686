"""The musicnn feature extractor: musicnn's network, in numpy and for ONNX Runtime, on our segments."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import audiofactory
from genre_tagger import segments
from genre_tagger.pipeline import audio
from genre_tagger.plugins import registry
from genre_tagger.segments import SAMPLE_RATE, SEGMENT_SAMPLES
from genre_tagger.spectrum import Segments

musicnn = pytest.importorskip("genre_tagger_plugins.musicnn")
REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"
BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_musicnn_onnx.py"
#: the most the two forward passes may differ by (max abs over the 200 units): the
#: shipped models were trained on the numpy pass's embedding
TOLERANCE = 1e-4

needs_onnxruntime = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                       reason="onnxruntime is not installed")
BACKENDS = [pytest.param("onnx", marks=needs_onnxruntime), "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch) -> str:
    """Each forward pass in turn, chosen as a user would: ``$GENRE_TAGGER_MUSICNN``."""
    monkeypatch.setenv(musicnn.BACKEND_VARIABLE, request.param)
    return request.param


def test_embedding_matches_musicnn_in_tensorflow(backend):
    # musicnn's own input patches and the embedding its TensorFlow graph gave for them
    # (musicnn 0.1.0, tensorflow-cpu 2.15: `benchmarks/explore_musicnn.py export`)
    with np.load(REFERENCE) as reference:
        patches, expected = reference["patches"], reference["penultimate"]
    embedding = musicnn.embed(patches)
    assert embedding.shape == (2, 200) and embedding.dtype == np.float32
    np.testing.assert_allclose(embedding, expected, atol=1e-4)


def tones(n: int) -> np.ndarray:
    t = np.arange(SEGMENT_SAMPLES) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    rows = [0.3 * np.sin(2 * np.pi * (110 * (k + 1)) * t) + 0.05 * rng.normal(size=t.size) for k in range(n)]
    return np.array(rows, dtype=np.float32)


def test_each_segment_is_embedded_on_its_own(backend):
    extractor = registry().feature_extractor("musicnn")
    samples = tones(musicnn.EMBED_SEGMENTS + 2)  # more than one forward pass
    together = extractor.extract(Segments(samples))
    assert together.shape == (len(samples), len(extractor.feature_names)) and together.dtype == np.float64
    alone = np.vstack([extractor.extract(Segments(samples[k : k + 1])) for k in range(len(samples))])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)
    assert not np.allclose(together[0], together[2])  # different music, different embeddings


def test_silence_and_no_segments(backend):
    extractor = registry().feature_extractor("musicnn")
    silent = extractor.extract(Segments(np.zeros((1, SEGMENT_SAMPLES), np.float32)))
    assert np.isfinite(silent).all()
    assert extractor.extract(Segments(np.zeros((0, SEGMENT_SAMPLES), np.float32))).shape == (0, 200)


# --------------------------------------------------------------- ONNX Runtime vs numpy


def assert_passes_agree(samples: np.ndarray) -> None:
    """Both forward passes on the patches of 22050 Hz ``samples [n, n_samples]``, within TOLERANCE."""
    patches = musicnn.log_mel_patches(samples)
    onnx, reference = musicnn.embed_onnx(patches), musicnn.embed_numpy(patches)
    assert onnx.shape == reference.shape == (len(samples), 200) and onnx.dtype == np.float32
    assert np.abs(onnx - reference).max() <= TOLERANCE


def generated_segments() -> np.ndarray:
    """One 3-s segment each of sounds that stress the network differently, float32 ``[7, 66149]``."""
    seconds = SEGMENT_SAMPLES / SAMPLE_RATE + 0.01
    square = np.sign(audiofactory.tone(seconds, SAMPLE_RATE, 55.0, 1.0))  # full-scale bass: the mel clamp
    rows = [audiofactory.music_like(seconds, SAMPLE_RATE), audiofactory.noise(seconds, SAMPLE_RATE, 0.3),
            audiofactory.clicks(seconds, SAMPLE_RATE), audiofactory.tone(seconds, SAMPLE_RATE, 440.0),
            square, 1e-4 * audiofactory.noise(seconds, SAMPLE_RATE, 1.0, seed=1),  # nearly silent
            np.zeros(int(seconds * SAMPLE_RATE), np.float32)]
    return np.array([row[:SEGMENT_SAMPLES] for row in rows], np.float32)


@needs_onnxruntime
def test_onnx_matches_numpy_on_generated_audio():
    assert_passes_agree(generated_segments())


@needs_onnxruntime
@pytest.mark.data
def test_onnx_matches_numpy_on_real_music(gtzan_dir):
    # a clip of each genre, three segments each (start, middle, end), as scan decodes it
    rows = []
    for folder in sorted(p for p in (gtzan_dir / "genres").iterdir() if p.is_dir()):
        clip = segments.split(audio.load(min(folder.glob("*.*"))))
        rows.append(clip[[0, len(clip) // 2, -1]])
    assert len(rows) == 10
    assert_passes_agree(np.concatenate(rows))


@needs_onnxruntime
def test_the_extractor_gives_the_same_features_either_way(monkeypatch):
    extractor = registry().feature_extractor("musicnn")
    batch = Segments(generated_segments())
    monkeypatch.setenv(musicnn.BACKEND_VARIABLE, "numpy")
    reference = extractor.extract(batch)
    monkeypatch.setenv(musicnn.BACKEND_VARIABLE, "onnx")
    assert np.abs(extractor.extract(batch) - reference).max() <= TOLERANCE


# ------------------------------------------------------------------ choosing the pass


def test_onnx_is_the_default_where_onnxruntime_imports(monkeypatch):
    monkeypatch.delenv(musicnn.BACKEND_VARIABLE, raising=False)
    expected = "onnx" if importlib.util.find_spec("onnxruntime") else "numpy"
    assert musicnn.backend() == expected
    monkeypatch.setattr(musicnn, "_onnx_importable", lambda: False)  # as without onnxruntime
    assert musicnn.backend() == "numpy"


def test_the_variable_chooses_the_pass(monkeypatch):
    calls = []
    monkeypatch.setattr(musicnn, "embed_numpy", lambda patches: calls.append("numpy") or np.zeros((1, 200)))
    monkeypatch.setattr(musicnn, "embed_onnx", lambda patches: calls.append("onnx") or np.zeros((1, 200)))
    for value in ("numpy", " ONNX ", "numpy"):
        monkeypatch.setenv(musicnn.BACKEND_VARIABLE, value)
        musicnn.embed(np.zeros((1, 187, 96), np.float32))
    assert calls == ["numpy", "onnx", "numpy"]
    monkeypatch.setenv(musicnn.BACKEND_VARIABLE, "tensorflow")
    with pytest.raises(ValueError, match="GENRE_TAGGER_MUSICNN='tensorflow': expected one of onnx, numpy"):
        musicnn.backend()


@needs_onnxruntime
def test_the_session_runs_on_one_thread_in_sequence():
    import onnxruntime

    options = musicnn.onnx_session().get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    assert musicnn.onnx_session().get_providers() == ["CPUExecutionProvider"]


# ------------------------------------------------------------- the shipped .onnx file


@needs_onnxruntime
def test_the_shipped_onnx_records_the_shipped_weights():
    import hashlib

    metadata = musicnn.onnx_session().get_modelmeta().custom_metadata_map
    assert metadata["weights"] == musicnn.WEIGHTS.name
    assert metadata["weights_sha256"] == hashlib.sha256(musicnn.WEIGHTS.read_bytes()).hexdigest()


def test_the_shipped_onnx_is_what_the_script_builds(tmp_path):
    onnx = pytest.importorskip("onnx", reason="the onnx package builds the graph (pip install onnx)")
    import subprocess
    import sys

    out = tmp_path / "musicnn_msd.onnx"
    subprocess.run([sys.executable, str(BUILD_SCRIPT), "--weights", str(musicnn.WEIGHTS), "--out", str(out)],
                   check=True, capture_output=True)
    built, shipped = onnx.load(out), onnx.load(musicnn.ONNX_MODEL)
    # the graph (nodes, initializers, inputs, outputs), its opset and metadata: what runs,
    # compared as such rather than as file bytes, which another onnx version may order otherwise
    stale = "plugins/musicnn_msd.onnx is not what scripts/build_musicnn_onnx.py builds: run it again"
    assert built.graph.SerializeToString(deterministic=True) == shipped.graph.SerializeToString(deterministic=True), stale
    assert list(built.opset_import) == list(shipped.opset_import), stale
    assert list(built.metadata_props) == list(shipped.metadata_props), stale


def test_without_onnxruntime_the_numpy_pass_runs():
    # a fresh interpreter in which `import onnxruntime` fails, as where it is not installed
    import subprocess
    import sys

    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "import numpy as np\n"
            "from genre_tagger_plugins import musicnn\n"
            "assert musicnn.backend() == 'numpy', musicnn.backend()\n"
            "print(musicnn.embed(np.zeros((1, 187, 96), np.float32)).shape)\n")
    env = {k: v for k, v in os.environ.items() if k != musicnn.BACKEND_VARIABLE}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 200)"
