"""``musicnn``: the 200-unit embedding of a CNN trained to tag the Million Song Dataset.

musicnn (Pons & Serra, "musicnn: pre-trained convolutional neural networks for music
audio tagging", 2019; ISC licence, see ``musicnn_LICENSE.txt``) is the ``MSD_musicnn``
model of the ``musicnn`` package. Its weights ship beside this module
(``musicnn_msd.npz``, exported from that package's TensorFlow checkpoint by
``benchmarks/explore_musicnn.py export``), and so does its forward pass, twice, so
neither TensorFlow nor a download is needed:

- ``onnx``: ``musicnn_msd.onnx``, built from those weights by
  ``scripts/build_musicnn_onnx.py``, run by ONNX Runtime on one thread (about half the
  time of the numpy pass); the default wherever ``onnxruntime`` can be imported;
- ``numpy``: :func:`embed_numpy`, written here; the fallback without ``onnxruntime``.

Both give the same embedding to float32 rounding (within 1e-5; the tests hold them
within 1e-4), so the extractor's :attr:`Musicnn.version` does not depend on which ran.
The environment variable ``GENRE_TAGGER_MUSICNN`` (``onnx`` or ``numpy``) chooses one.

Per 3-second segment (22050 Hz), as ``musicnn.extractor`` prepares its input:

1. resampled to 16 kHz (soxr, librosa's default);
2. mel power spectrogram: ``n_fft=512``, ``hop_length=256``, 96 Slaney mel bands, the
   first 187 frames (musicnn's 3-second patch), rounded to float16;
3. ``log10(10000 * mel + 1)``, rounded to float16;

then the network: batch-normalised input; a front end of "timbral" filters (7 frames x
38 and x 67 mel bands, 204 each) and "temporal" filters (128, 64 and 32 frames x 1 band,
51 each), each max-pooled over frequency; a mid end of three 7-frame convolutions of 64
filters with residual connections; mean and max over time of the 753 front and mid
channels; a dense layer of 200 ReLU units, batch-normalised: the embedding (musicnn's
``penultimate``). Batch normalisation uses the stored moving statistics (inference).

``benchmarks/explore_musicnn.py`` measures what it adds to genre recognition.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import librosa  # cheap: librosa imports its submodules (and numba, scipy) on first use
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from genre_tagger import spectrum
from genre_tagger.hookspecs import hookimpl
from genre_tagger.segments import SAMPLE_RATE
from genre_tagger.spectrum import Segments

WEIGHTS = Path(__file__).with_name("musicnn_msd.npz")
#: the same network for ONNX Runtime, built from WEIGHTS by scripts/build_musicnn_onnx.py
ONNX_MODEL = Path(__file__).with_name("musicnn_msd.onnx")
#: the environment variable that chooses the forward pass, one of BACKENDS
BACKEND_VARIABLE = "GENRE_TAGGER_MUSICNN"
BACKENDS = ("onnx", "numpy")
MUSICNN_SR = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
N_FRAMES = 187  # musicnn's input patch: 3 s at 16 kHz
EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default
N_UNITS = 200
#: segments per forward pass. Passes of more are no faster, on either path, and take more
#: memory: about 45 MB per segment that ONNX Runtime's memory arena keeps for the next pass,
#: and 30 MB per segment at the numpy pass's peak (benchmarks/results/musicnn_levers.md)
EMBED_SEGMENTS = 1
#: the 50 Million Song Dataset tags of musicnn's output layer (``dense_1``), in its order
#: (musicnn's ``configuration.MSD_LABELS``): listeners' last.fm tags of about 200,000 tracks
MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock", "jazz",
    "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow", "electronica",
    "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
)
#: tags naming genres that GTZAN's ten lack: the evidence of music outside the known genres
OUTSIDE_TAGS = ("electronic", "electronica", "electro", "House", "ambient", "chillout", "experimental")


@functools.cache
def weights() -> dict[str, np.ndarray]:
    """The network's float32 parameters, named as in musicnn's TensorFlow graph."""
    with np.load(WEIGHTS, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def log_mel_patches(samples: np.ndarray) -> np.ndarray:
    """musicnn's input, float32 ``[n, 187, 96]``, from 22050 Hz segments ``[n, n_samples]``."""
    return log_mel_16k(librosa.resample(samples, orig_sr=SAMPLE_RATE, target_sr=MUSICNN_SR, axis=-1))


def log_mel_16k(y: np.ndarray) -> np.ndarray:
    """musicnn's input, float32 ``[n, 187, 96]``, from 16 kHz segments ``[n, n_samples]``
    (steps 2 and 3 above)."""
    mel = librosa.feature.melspectrogram(y=y, sr=MUSICNN_SR, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS)
    mel = np.swapaxes(mel, -1, -2)[:, :N_FRAMES]
    if mel.shape[1] < N_FRAMES:  # segments shorter than 3 s: silence after them
        mel = np.pad(mel, ((0, 0), (0, N_FRAMES - mel.shape[1]), (0, 0)))
    # musicnn rounds the mel power and its logarithm to float16; computed in float16,
    # 10000 * mel overflows (to inf) above 6.55, which loud bass reaches, so only the
    # roundings are kept here
    mel = np.minimum(mel, np.finfo(np.float16).max).astype(np.float16).astype(np.float32)
    return np.log10(10000 * mel + 1).astype(np.float16).astype(np.float32)


@functools.cache
def _scale_shift(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Inference batch normalisation ``name`` as ``x * scale + shift``."""
    w = weights()
    scale = w[f"{name}/gamma"] / np.sqrt(w[f"{name}/moving_variance"] + EPSILON)
    return scale, w[f"{name}/beta"] - w[f"{name}/moving_mean"] * scale


def _relu_batch_norm(x: np.ndarray, name: str) -> np.ndarray:
    scale, shift = _scale_shift(name)
    return np.maximum(x, 0) * scale + shift


def _conv(columns: np.ndarray, layer: str) -> np.ndarray:
    """``columns @ kernel + bias`` for the convolution ``layer`` (before its ReLU):
    ``columns [..., k]`` holds the inputs under each kernel position, flattened in the
    kernel's order. Returns ``[..., filters]``."""
    w = weights()
    kernel = w[f"{layer}/kernel"]
    kernel = kernel.reshape(-1, kernel.shape[-1])
    out = np.reshape(columns, (-1, kernel.shape[0])) @ kernel + w[f"{layer}/bias"]
    return out.reshape(*columns.shape[:-1], -1)


def _front_filters(columns: np.ndarray, layer: str, norm: str) -> np.ndarray:
    """ReLU, batch norm, then the maximum over mel bands (axis 2) of the convolution
    ``layer``. Both steps are monotonic per filter (increasing where the batch norm's
    scale is positive, decreasing where negative), so the maximum is taken first, of the
    raw outputs or of their negation: the same values, without normalising every band."""
    raw = _conv(columns, layer)
    scale, _ = _scale_shift(norm)
    return _relu_batch_norm(np.where(scale > 0, raw.max(axis=2), raw.min(axis=2)), norm)


@functools.cache
def onnx_session():
    """An ``onnxruntime.InferenceSession`` of :data:`ONNX_MODEL`, made once per process.

    One thread, operators run in sequence: scans run one worker process per core, and
    more threads per process would only contend. ``onnxruntime`` is imported here, not
    with the module (about 0.15 s), so commands that embed nothing never pay for it.
    Raises ``ImportError`` without ``onnxruntime``.
    """
    import onnxruntime

    return onnxruntime.InferenceSession(str(ONNX_MODEL), session_options(), providers=["CPUExecutionProvider"])


def session_options():
    """The ``onnxruntime.SessionOptions`` of :func:`onnx_session` (see there)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return options


@functools.cache
def _onnx_importable() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def backend() -> str:
    """The forward pass :func:`embed` runs: ``$GENRE_TAGGER_MUSICNN`` when set (``onnx``
    or ``numpy``), else ``onnx`` where ``onnxruntime`` can be imported, else ``numpy``.
    Raises ``ValueError`` for another value of the variable."""
    chosen = os.environ.get(BACKEND_VARIABLE, "").strip().lower()
    if chosen and chosen not in BACKENDS:
        raise ValueError(f"${BACKEND_VARIABLE}={chosen!r}: expected one of {', '.join(BACKENDS)}")
    return chosen or ("onnx" if _onnx_importable() else "numpy")


def embed(patches: np.ndarray) -> np.ndarray:
    """The embedding, float32 ``[n, 200]``, of musicnn input patches ``[n, 187, 96]``, by
    the forward pass :func:`backend` names (both agree within 1e-5)."""
    return embed_onnx(patches) if backend() == "onnx" else embed_numpy(patches)


def embed_onnx(patches: np.ndarray) -> np.ndarray:
    """:func:`embed_numpy`'s embedding, float32 ``[n, 200]``, of patches ``[n, 187, 96]``
    computed by ONNX Runtime from :data:`ONNX_MODEL`."""
    if len(patches) == 0:  # a graph with a zero-sized batch is not worth a session
        return np.empty((0, N_UNITS), np.float32)
    return onnx_session().run(["embedding"], {"patches": np.ascontiguousarray(patches, dtype=np.float32)})[0]


def embed_numpy(patches: np.ndarray) -> np.ndarray:
    """The embedding, float32 ``[n, 200]``, of musicnn input patches ``[n, 187, 96]``, in numpy."""
    scale, shift = _scale_shift("batch_normalization_9")
    w = weights()
    return _relu_batch_norm((pooled_numpy(patches) * scale + shift) @ w["dense/kernel"] + w["dense/bias"],
                            "batch_normalization_10")


def pooled_numpy(patches: np.ndarray) -> np.ndarray:
    """The layer below the embedding, ``[n, 1506]``, of patches ``[n, 187, 96]``: each of the
    753 channels' maximum and mean over time, interleaved per channel."""
    scale, shift = _scale_shift("batch_normalization")
    x = patches * scale + shift
    padded = np.pad(x, ((0, 0), (3, 3), (0, 0)))  # 'valid' 7-frame kernels keep 187 frames
    front = []
    for layer, norm, bands in (("conv2d", "batch_normalization_1", 38), ("conv2d_1", "batch_normalization_2", 67)):
        columns = sliding_window_view(padded, (7, bands), axis=(1, 2))  # [n, 187, 96 - bands + 1, 7, bands]
        columns = columns.reshape(*columns.shape[:3], -1)
        front.append(_front_filters(columns, layer, norm))
    for layer, norm, frames in (("conv2d_2", "batch_normalization_3", 128), ("conv2d_3", "batch_normalization_4", 64),
                                ("conv2d_4", "batch_normalization_5", 32)):
        before = (frames - 1) // 2  # TensorFlow's 'same' padding
        columns = sliding_window_view(np.pad(x, ((0, 0), (before, frames - 1 - before), (0, 0))), frames, axis=1)
        front.append(_front_filters(columns, layer, norm))  # columns [n, 187, 96, frames]
    mid = [np.concatenate(front, axis=2)]  # [n, 187, 561]
    for layer, norm in (("conv2d_5", "batch_normalization_6"), ("conv2d_6", "batch_normalization_7"),
                        ("conv2d_7", "batch_normalization_8")):
        columns = sliding_window_view(np.pad(mid[-1], ((0, 0), (3, 3), (0, 0))), 7, axis=1)  # [n, 187, width, 7]
        columns = np.swapaxes(columns, -1, -2).reshape(*columns.shape[:2], -1)  # kernel order: frame, then channel
        out = _relu_batch_norm(_conv(columns, layer), norm)
        mid.append(out if len(mid) == 1 else out + mid[-1])  # residual from the second on
    features = np.concatenate(mid, axis=2)  # [n, 187, 753]
    # max and mean over time, interleaved per channel as TensorFlow flattens [753, 2]
    return np.stack([features.max(axis=1), features.mean(axis=1)], axis=2).reshape(len(features), -1)


def tag_probabilities(embedding: np.ndarray) -> np.ndarray:
    """musicnn's own output, the probability of each of :data:`MSD_TAGS`, float64 ``[n, 50]``,
    of embeddings ``[n, 200]``: its output layer is one dense layer and a sigmoid on the
    embedding, so computing it here equals a second output of either forward pass."""
    w = weights()
    logits = np.asarray(embedding, np.float64) @ w["dense_1/kernel"] + w["dense_1/bias"]
    return 1.0 / (1.0 + np.exp(-logits))


class Musicnn:
    """musicnn's MSD embedding of 22050 Hz segments."""

    name = "musicnn"
    version = "1"
    feature_names: list[str] = [f"musicnn{k}" for k in range(N_UNITS)]

    def extract(self, segments: Segments) -> np.ndarray:
        """:class:`~genre_tagger.spectrum.Segments` of 22050 Hz audio in, float64
        ``[n_segments, 200]`` out."""
        rows = []
        for batch in spectrum.batches(segments):
            patches = log_mel_patches(batch.samples)
            # one segment at a time: as fast as more, and memory stays low (see EMBED_SEGMENTS)
            rows += [embed(patches[start : start + EMBED_SEGMENTS]) for start in range(0, len(patches), EMBED_SEGMENTS)]
        return np.concatenate(rows).astype(np.float64) if rows else np.empty((0, N_UNITS))

    def outside_genre_layer(self, classes: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """The output layer's columns of :data:`OUTSIDE_TAGS` that name none of ``classes``
        (``kernel [200, n]``, ``bias [n]``): the evidence of music outside the known genres."""
        known = {c.lower() for c in classes}
        tags = [MSD_TAGS.index(t) for t in OUTSIDE_TAGS if t.lower() not in known]
        if not tags:
            return None
        w = weights()
        return w["dense_1/kernel"][:, tags].astype(np.float64), w["dense_1/bias"][tags].astype(np.float64)


@hookimpl
def genre_tagger_feature_extractors() -> list[Musicnn]:
    """The plugin hook: this module provides the ``musicnn`` feature extractor."""
    return [Musicnn()]
