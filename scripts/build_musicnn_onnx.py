"""Build ``plugins/musicnn_msd.onnx``, musicnn's forward pass for ONNX Runtime, from the
shipped weights ``plugins/musicnn_msd.npz``.

Usage (from the repository root; needs the ``onnx`` package, a build-time need only)::

    .venv/bin/pip install onnx
    .venv/bin/python scripts/build_musicnn_onnx.py [--weights plugins/musicnn_msd.npz] [--out plugins/musicnn_msd.onnx]

The graph computes what :func:`genre_tagger_plugins.musicnn.embed_numpy` computes, layer
for layer (see that module's docstring): input ``patches`` float32 ``[n, 187, 96]``
(frames x mel bands), output ``embedding`` float32 ``[n, 200]``. Tensors are NCHW:
``[n, 1, 187 frames, 96 bands]`` through the front end, ``[n, channels, 187]`` after it.
Nothing is fused or quantised beyond what the numpy pass does, so both agree to float32
rounding (about 1e-6; ``tests/test_musicnn.py`` holds them within 1e-4).

The model records the SHA-256 of the weights file it was built from
(``metadata_props["weights_sha256"]``), and the build is deterministic (no time stamp,
no tool version in the file), so a test can check that the shipped ``.onnx`` is what this
script makes from the shipped weights.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "plugins" / "musicnn_msd.npz"
OUT = ROOT / "plugins" / "musicnn_msd.onnx"
#: opset 17 / IR 8: read by every onnxruntime that supports numpy 2 (1.19 on)
OPSET = 17
IR_VERSION = 8
PRODUCER = "genre-tagger scripts/build_musicnn_onnx.py"
#: bump when the graph this script writes changes (the weights' hash covers the rest)
GRAPH_VERSION = "1"
EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default, as in musicnn.py
N_FRAMES, N_MELS, N_UNITS = 187, 96, 200
#: front-end convolutions: (layer, its batch norm, kernel frames x bands, 'same' padding in time)
TIMBRAL = (("conv2d", "batch_normalization_1"), ("conv2d_1", "batch_normalization_2"))
TEMPORAL = (("conv2d_2", "batch_normalization_3"), ("conv2d_3", "batch_normalization_4"),
            ("conv2d_4", "batch_normalization_5"))
MID = (("conv2d_5", "batch_normalization_6"), ("conv2d_6", "batch_normalization_7"),
       ("conv2d_7", "batch_normalization_8"))


def sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """The float32 parameters in ``path``, named as in musicnn's TensorFlow graph."""
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def scale_shift(w: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Inference batch normalisation ``name`` as ``x * scale + shift`` (float32 ``[channels]``),
    computed exactly as ``musicnn._scale_shift`` computes it."""
    scale = w[f"{name}/gamma"] / np.sqrt(w[f"{name}/moving_variance"] + EPSILON)
    return scale, w[f"{name}/beta"] - w[f"{name}/moving_mean"] * scale


class Graph:
    """Nodes and initializers being collected, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        """An initializer ``name`` holding ``value`` (kept in its dtype); returns its name."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, **attributes) -> str:
        """A node ``op_type(inputs) -> output``; returns ``output``."""
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output

    def affine(self, x: str, scale: np.ndarray, shift: np.ndarray, name: str) -> str:
        """``x * scale + shift``, broadcast as numpy does (``scale`` shaped for ``x``)."""
        scaled = self.op("Mul", [x, self.constant(f"{name}/scale", scale)], f"{name}/scaled")
        return self.op("Add", [scaled, self.constant(f"{name}/shift", shift)], name)

    def relu_batch_norm(self, x: str, w: dict, norm: str, channel_shape: tuple[int, ...], name: str) -> str:
        """ReLU then the batch norm ``norm``, its ``[channels]`` reshaped to ``channel_shape``
        to broadcast over ``x``."""
        scale, shift = scale_shift(w, norm)
        return self.affine(self.op("Relu", [x], f"{name}/relu"), scale.reshape(channel_shape),
                           shift.reshape(channel_shape), name)


def front_filters(g: Graph, x: str, w: dict, layer: str, norm: str, pads: list[int]) -> str:
    """One front-end convolution of the batch-normalised input ``x [n, 1, 187, 96]``, then
    ReLU, batch norm and the maximum over mel bands: ``[n, filters, 187]``.

    As in ``musicnn._front_filters``, the maximum is taken before ReLU and batch norm,
    which are monotonic per filter: a filter whose batch-norm scale is negative has its
    kernel and bias negated (the maximum of the negation is minus the minimum), and the
    sign is put back after the maximum.
    """
    scale, _ = scale_shift(w, norm)
    sign = np.where(scale > 0, 1.0, -1.0).astype(np.float32)
    kernel = np.transpose(w[f"{layer}/kernel"], (3, 2, 0, 1)) * sign[:, None, None, None]  # TF HWIO -> OIHW
    bias = w[f"{layer}/bias"] * sign
    conv = g.op("Conv", [x, g.constant(f"{layer}/kernel", kernel), g.constant(f"{layer}/bias", bias)],
                f"{layer}/conv", pads=pads)  # [n, filters, 187, bands left]
    peak = g.op("ReduceMax", [conv], f"{layer}/max", axes=[3], keepdims=0)  # [n, filters, 187]
    unsigned = g.op("Mul", [peak, g.constant(f"{layer}/sign", sign[:, None])], f"{layer}/unsigned")
    return g.relu_batch_norm(unsigned, w, norm, (-1, 1), f"{layer}/out")


def mid_layer(g: Graph, x: str, w: dict, layer: str, norm: str) -> str:
    """A 7-frame convolution over every channel of ``x [n, channels, 187]`` ('same' in time),
    ReLU and batch norm: ``[n, 64, 187]``. musicnn's kernel ``[7, channels, 1, 64]`` is
    the 1-d kernel ``[64, channels, 7]``."""
    kernel = np.transpose(w[f"{layer}/kernel"][:, :, 0, :], (2, 1, 0))
    conv = g.op("Conv", [x, g.constant(f"{layer}/kernel", kernel), g.constant(f"{layer}/bias", w[f"{layer}/bias"])],
                f"{layer}/conv", pads=[3, 3])
    return g.relu_batch_norm(conv, w, norm, (-1, 1), f"{layer}/out")


def build_graph(w: dict[str, np.ndarray]) -> onnx.GraphProto:
    """musicnn's forward pass as an ONNX graph: ``patches [n, 187, 96]`` -> ``embedding [n, 200]``."""
    g = Graph()
    scale, shift = scale_shift(w, "batch_normalization")
    x = g.affine("patches", scale, shift, "input_norm")
    x = g.op("Unsqueeze", [x, g.constant("channel_axis", np.array([1], np.int64))], "input_nchw")  # [n, 1, 187, 96]
    # timbral kernels are 'valid' over bands and padded 3 frames each side in time (187 frames kept);
    # temporal ones are TensorFlow 'same' in time: (frames - 1) // 2 before, the rest after
    front = [front_filters(g, x, w, layer, norm, pads=[3, 0, 3, 0]) for layer, norm in TIMBRAL]
    for layer, norm in TEMPORAL:
        frames = w[f"{layer}/kernel"].shape[0]
        before = (frames - 1) // 2
        front.append(front_filters(g, x, w, layer, norm, pads=[before, 0, frames - 1 - before, 0]))
    mid = [g.op("Concat", front, "front", axis=1)]  # [n, 561, 187]
    for k, (layer, norm) in enumerate(MID):
        out = mid_layer(g, mid[-1], w, layer, norm)
        mid.append(out if k == 0 else g.op("Add", [out, mid[-1]], f"{layer}/residual"))  # residual from the second on
    features = g.op("Concat", mid, "features", axis=1)  # [n, 753, 187]
    # max and mean over time, interleaved per channel as TensorFlow flattens [753, 2]
    peak = g.op("ReduceMax", [features], "pool/max", axes=[2], keepdims=1)
    mean = g.op("ReduceMean", [features], "pool/mean", axes=[2], keepdims=1)
    pairs = g.op("Concat", [peak, mean], "pool/pairs", axis=2)  # [n, 753, 2]
    pooled = g.op("Reshape", [pairs, g.constant("pool/shape", np.array([-1, 2 * 753], np.int64))], "pooled")
    scale, shift = scale_shift(w, "batch_normalization_9")
    pooled = g.affine(pooled, scale, shift, "pooled_norm")
    dense = g.op("MatMul", [pooled, g.constant("dense/kernel", w["dense/kernel"])], "dense/matmul")
    dense = g.op("Add", [dense, g.constant("dense/bias", w["dense/bias"])], "dense/out")
    g.relu_batch_norm(dense, w, "batch_normalization_10", (-1,), "embedding")
    return helper.make_graph(
        g.nodes, "musicnn_msd_penultimate",
        [helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["n", N_FRAMES, N_MELS])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", N_UNITS])],
        initializer=g.initializers,
    )


def build(weights: Path = WEIGHTS) -> onnx.ModelProto:
    """The checked model built from the npz at ``weights``, its SHA-256 in the metadata."""
    model = helper.make_model(
        build_graph(load_weights(weights)), producer_name=PRODUCER, producer_version=GRAPH_VERSION,
        opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        doc_string="musicnn (Pons & Serra 2019, MSD_musicnn, ISC licence: musicnn_LICENSE.txt): the 200-unit "
                   "penultimate layer of 3-second log-mel patches [n, 187, 96] at 16 kHz",
    )
    helper.set_model_props(model, {"weights": weights.name, "weights_sha256": sha256(weights),
                                   "graph_version": GRAPH_VERSION})
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    model = build(args.weights)
    args.out.write_bytes(model.SerializeToString(deterministic=True))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) from {args.weights} "
          f"(sha256 {sha256(args.weights)[:12]}...)")


if __name__ == "__main__":
    main()
