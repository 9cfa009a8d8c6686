"""Would a float16 or int8 musicnn graph do (#29 item 3)? A measurement only: nothing ships.

Variants of ``plugins/musicnn_msd.onnx`` (today's float32 graph), built under ``/tmp``:

- ``float16``: weights and activations in float16, inputs and output kept float32
  (``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)``);
- ``int8-dynamic``: ``onnxruntime.quantization.quantize_dynamic``, int8 weights (Conv and
  MatMul), activations quantised per run (so per batch: the scale spans the whole batch);
- ``int8-static``: ``quantize_static``, QDQ, per-channel int8 weights, uint8 activations,
  MinMax-calibrated on a few dozen GTZAN segments (clips that are not scored here).

Measured, per variant, each on ONNX Runtime's CPU provider with musicnn's own session
options (one thread, sequential):

1. speed per segment at batch sizes 1, 4 and 10 (median of several runs; the variants
   are timed in turn, interleaved, in one run on the same real patches);
2. the embedding's largest and mean absolute difference from float32's, over every
   scored segment (each segment embedded alone, as ``Musicnn.extract`` does);
3. the shipped default model's (``pretrained/musicnn-logreg``) top genre per track by the
   default majority vote and by soft vote, as ``predict_track`` / ``TrackPrediction.decide``
   compute it, with the gtzan57 and timbre-rhythm features computed once and only the
   musicnn embedding swapped: agreement with float32's top genre, and track balanced
   accuracy on GTZAN (*in-source*: the model was trained on these clips) and on Emotify's
   classical, pop and rock clips (*unseen source*). At most 10 spread segments per clip,
   as scan does by default.

Clips are taken round-robin over genres and over the two sets, so that a time budget
(``--budget-s``) that stops the scoring early still leaves balanced subsets; how many
clips were scored is recorded. Run from the project root::

    .venv/bin/python research/explore_onnx_precision.py [--budget-s 1200]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import itertools
import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from genre_tagger import segments, spectrum
from genre_tagger.models import catalogue
from genre_tagger.models.predictor import predict_track
from genre_tagger.pipeline.analysis import file_features, one_blas_thread
from genre_tagger.plugins import registry
from genre_tagger.selection import balanced_accuracy
from genre_tagger_plugins import musicnn

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GTZAN = SHARED / "gtzan" / "genres"
EMOTIFY = SHARED / "emotify"
RESULTS = ROOT / "research" / "results" / "explore_onnx_precision"
WORK = Path("/tmp/explore_onnx_precision")
MODEL = "musicnn-logreg"
OTHER_EXTRACTORS = ("gtzan57", "timbre-rhythm")
BATCHES = (1, 4, 10)
VOTES = ("majority", "soft")
#: the issue's rule: a variant could ship only if accuracy stays within this of float32's on both sets
TOLERANCE = 0.01


def build_variants(calibration: np.ndarray) -> dict[str, str]:
    """The variants' .onnx files under WORK (float32 is the shipped file itself)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.float16 import convert_float_to_float16

    WORK.mkdir(parents=True, exist_ok=True)
    source = str(musicnn.ONNX_MODEL)
    paths = {"float32": source}
    onnx.save(convert_float_to_float16(onnx.load(source), keep_io_types=True), str(WORK / "float16.onnx"))
    paths["float16"] = str(WORK / "float16.onnx")
    quantize_dynamic(source, str(WORK / "int8_dynamic.onnx"), weight_type=QuantType.QInt8)
    paths["int8-dynamic"] = str(WORK / "int8_dynamic.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter([{"patches": calibration[i : i + 1]} for i in range(len(calibration))])

        def get_next(self):
            return next(self.rows, None)

    try:
        quant_pre_process(source, str(WORK / "pre.onnx"), skip_symbolic_shape=True)
        quantize_static(str(WORK / "pre.onnx"), str(WORK / "int8_static.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        paths["int8-static"] = str(WORK / "int8_static.onnx")
    except Exception as error:  # noqa: BLE001 - the static variant is optional
        print("int8-static not built:", type(error).__name__, error, flush=True)
    return paths


class Patches:
    """A pseudo-extractor: musicnn's input patches, flattened ``[n, 187 * 96]``, made as
    ``Musicnn.extract`` makes them (per spectrum batch), so file_features decodes once."""

    name = "patches"

    def extract(self, batch: spectrum.Segments) -> np.ndarray:
        rows = [musicnn.log_mel_patches(b.samples).reshape(len(b.samples), -1) for b in spectrum.batches(batch)]
        return np.concatenate(rows)


def clips() -> tuple[list[tuple[str, Path, str]], list[Path]]:
    """``(set, path, genre)`` in scoring order (round-robin over genres, alternating sets),
    and the calibration clips (the last 4 GTZAN clips of each genre, which the order puts last)."""
    gtzan = {g.name: sorted(g.glob("*.ogg")) for g in sorted(GTZAN.iterdir()) if g.is_dir()}
    calibration = [p for files in gtzan.values() for p in files[-4:]]
    gtzan = {g: files[:-4] for g, files in gtzan.items()}
    emotify: dict[str, list[Path]] = {}
    with open(EMOTIFY / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["genre"] in ("classical", "pop", "rock"):
                emotify.setdefault(row["genre"], []).append(EMOTIFY / row["path"])
    rr = lambda groups: [(g, p) for files in itertools.zip_longest(*[[(g, p) for p in v] for g, v in groups.items()])
                         for g, p in (f for f in files if f is not None)]
    g_order = [("gtzan", p, g) for g, p in rr(gtzan)]
    e_order = [("emotify", p, g) for g, p in rr(emotify)]
    order = [c for pair in itertools.zip_longest(g_order, e_order) for c in pair if c is not None]
    return order, calibration


def sessions(paths: dict[str, str]) -> dict[str, ort.InferenceSession]:
    return {name: ort.InferenceSession(p, musicnn.session_options(), providers=["CPUExecutionProvider"])
            for name, p in paths.items()}


def run(session, patches: np.ndarray) -> np.ndarray:
    return session.run(["embedding"], {"patches": np.ascontiguousarray(patches, dtype=np.float32)})[0]


def time_variants(runs: dict[str, ort.InferenceSession], patches: np.ndarray, repeats: int) -> dict:
    """Median ms per segment at each batch size; variants interleaved within each repeat."""
    seconds = {name: {b: [] for b in BATCHES} for name in runs}
    for name, s in runs.items():  # warm-up
        for b in BATCHES:
            run(s, patches[:b])
    for _ in range(repeats):
        for b in BATCHES:
            for name, s in runs.items():
                started = time.perf_counter()
                run(s, patches[:b])
                seconds[name][b].append(time.perf_counter() - started)
    return {name: {str(b): {"ms_per_segment": 1000 * float(np.median(t)) / b, "runs": len(t)} for b, t in per.items()}
            for name, per in seconds.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=1200, help="stop scoring clips after this many seconds")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per variant and batch size")
    parser.add_argument("--max-segments", type=int, default=segments.DEFAULT_MAX_SEGMENTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    reg = registry()
    predictor = catalogue.load(catalogue.default_models_dir() / MODEL, reg)
    assert set(predictor.extractors) == {*OTHER_EXTRACTORS, "musicnn"}, predictor.extractors
    classes = [str(c) for c in predictor.classes]
    extractors = [reg.feature_extractor(n) for n in OTHER_EXTRACTORS] + [Patches()]
    order, calibration_clips = clips()
    shape = (-1, musicnn.N_FRAMES, musicnn.N_MELS)

    with one_blas_thread():
        # calibration: the middle segment of 4 held-out clips per GTZAN genre
        calibration = np.concatenate([file_features(p, [Patches()], 1).features["patches"] for p in calibration_clips])
        calibration = calibration.reshape(shape).astype(np.float32)
        paths = build_variants(calibration)
        runs = sessions(paths)
        print("variants:", list(paths), f"({time.perf_counter() - started:.0f} s)", flush=True)

        # 1. speed, on the first 10 segments of the first GTZAN clip in order
        first = file_features(order[0][1], [Patches()], 10).features["patches"].reshape(shape).astype(np.float32)
        speed = time_variants(runs, first, args.repeats)
        print("speed:", json.dumps(speed), f"({time.perf_counter() - started:.0f} s)", flush=True)

        # 2 and 3. every clip until the budget runs out
        tracks = []
        max_abs = {n: 0.0 for n in runs if n != "float32"}
        sum_abs = {n: 0.0 for n in max_abs}
        n_values = 0
        deadline = started + args.budget_s
        for source, path, genre in order:
            if time.perf_counter() > deadline:
                break
            ff = file_features(path, extractors, args.max_segments)
            patches = ff.features["patches"].reshape(shape).astype(np.float32)
            # one segment at a time, as Musicnn.extract embeds (EMBED_SEGMENTS = 1)
            emb = {n: np.concatenate([run(s, patches[i : i + 1]) for i in range(len(patches))]) for n, s in runs.items()}
            n_values += emb["float32"].size
            for n in max_abs:
                diff = np.abs(emb[n].astype(np.float64) - emb["float32"])
                max_abs[n] = max(max_abs[n], float(diff.max()))
                sum_abs[n] += float(diff.sum())
            row = {"set": source, "path": str(path.relative_to(SHARED)), "genre": genre, "segments": len(patches)}
            for n, e in emb.items():
                features = {x: ff.features[x] for x in OTHER_EXTRACTORS} | {"musicnn": e.astype(np.float64)}
                prediction = predict_track(predictor, features)
                row[n] = {v: prediction.decide(v).genre for v in VOTES}
            tracks.append(row)
            if len(tracks) % 20 == 0:
                print(f"{len(tracks)} clips ({time.perf_counter() - started:.0f} s)", flush=True)

    summary = {}
    for source in ("gtzan", "emotify"):
        rows = [t for t in tracks if t["set"] == source]
        truth = np.array([t["genre"] for t in rows])
        per = {}
        for n in runs:
            per[n] = {}
            for v in VOTES:
                pred = np.array([t[n][v] for t in rows])
                ref = np.array([t["float32"][v] for t in rows])
                per[n][v] = {"balanced_accuracy": balanced_accuracy(truth, pred) if len(rows) else None,
                             "agreement_with_float32": float((pred == ref).mean()) if len(rows) else None}
        summary[source] = {"clips": len(rows), "segments": int(sum(t["segments"] for t in rows)),
                           "per_genre_clips": {g: int((truth == g).sum()) for g in np.unique(truth)}, "variants": per}
    verdict = {}
    for n in runs:
        if n == "float32":
            continue
        verdict[n] = {v: all(summary[s]["variants"][n][v]["balanced_accuracy"] is not None and
                             abs(summary[s]["variants"][n][v]["balanced_accuracy"]
                                 - summary[s]["variants"]["float32"][v]["balanced_accuracy"]) <= TOLERANCE
                             for s in summary) for v in VOTES}
    out = {
        "date": datetime.date.today().isoformat(), "onnxruntime": ort.__version__, "onnx": onnx.__version__,
        "model": MODEL, "max_segments": args.max_segments, "budget_s": args.budget_s,
        "clips_available": {"gtzan": sum(1 for c in order if c[0] == "gtzan"),
                            "emotify": sum(1 for c in order if c[0] == "emotify")},
        "calibration_clips": [str(p.relative_to(SHARED)) for p in calibration_clips],
        "variant_files": paths, "variant_bytes": {n: Path(p).stat().st_size for n, p in paths.items()},
        "speed": speed,
        "embedding_difference": {n: {"max_abs": max_abs[n], "mean_abs": sum_abs[n] / n_values if n_values else None}
                                 for n in max_abs},
        "scores": summary, "within_tolerance_on_both_sets": verdict, "tolerance": TOLERANCE,
        "seconds": round(time.perf_counter() - started, 1), "tracks": tracks,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("speed", "embedding_difference", "scores", "within_tolerance_on_both_sets",
                                          "seconds")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
