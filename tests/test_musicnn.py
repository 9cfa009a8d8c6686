"""The musicnn feature extractor: musicnn's network, ported to numpy, on our segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genre_tagger.plugins import registry
from genre_tagger.segments import SAMPLE_RATE, SEGMENT_SAMPLES
from genre_tagger.spectrum import Segments

musicnn = pytest.importorskip("genre_tagger_plugins.musicnn")
REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"


def test_embedding_matches_musicnn_in_tensorflow():
    # musicnn's own input patches and the embedding its TensorFlow graph gave for them
    # (musicnn 0.1.0, tensorflow-cpu 2.15: `benchmarks/explore_musicnn.py export`)
    with np.load(REFERENCE) as reference:
        patches, expected = reference["patches"], reference["penultimate"]
    embedding = musicnn.embed(patches)
    assert embedding.shape == (2, 200)
    np.testing.assert_allclose(embedding, expected, atol=1e-4)


def tones(n: int) -> np.ndarray:
    t = np.arange(SEGMENT_SAMPLES) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    rows = [0.3 * np.sin(2 * np.pi * (110 * (k + 1)) * t) + 0.05 * rng.normal(size=t.size) for k in range(n)]
    return np.array(rows, dtype=np.float32)


def test_each_segment_is_embedded_on_its_own():
    extractor = registry().feature_extractor("musicnn")
    samples = tones(musicnn.EMBED_SEGMENTS + 2)  # more than one forward pass
    together = extractor.extract(Segments(samples))
    assert together.shape == (len(samples), len(extractor.feature_names)) and together.dtype == np.float64
    alone = np.vstack([extractor.extract(Segments(samples[k : k + 1])) for k in range(len(samples))])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)
    assert not np.allclose(together[0], together[2])  # different music, different embeddings


def test_silence_and_no_segments():
    extractor = registry().feature_extractor("musicnn")
    silent = extractor.extract(Segments(np.zeros((1, SEGMENT_SAMPLES), np.float32)))
    assert np.isfinite(silent).all()
    assert extractor.extract(Segments(np.zeros((0, SEGMENT_SAMPLES), np.float32))).shape == (0, 200)
