"""Issue #23's cheap levers on musicnn's cost, measured: batch size and ONNX Runtime's
memory arena against speed and memory, decoding straight to 16 kHz, and start-up.

Usage (from the repository root)::

    .venv/bin/python benchmarks/musicnn_levers.py [--data ../shared/data/gtzan] [--out benchmarks/results/musicnn_levers.md]

What it measures, one thing at a time (each pass setting in a fresh process, so its
memory peak is its own):

1. **Batch size and arena.** musicnn's forward pass on 16 real segments in passes of
   1, 2, 4, 8 and 16 segments: ONNX Runtime with its CPU memory arena (its default) and
   without, and the numpy pass; milliseconds per segment (one thread, the fastest of
   three rounds), the process's peak resident memory above what it held before the first
   pass, and what it still holds after the last.
2. **Straight to 16 kHz.** scan decodes every file to 22050 Hz (what every extractor
   hears) and musicnn resamples its segments again, to 16 kHz. Decoding a 44.1 kHz
   stereo file straight to 16 kHz for musicnn would skip that second resampling; this
   compares the embeddings both ways on real clips made 44.1 kHz stereo (flac: lossless,
   so only the resampling differs) and times the resampling it would save. A segment
   starts at ``k * 66149`` samples at 22050 Hz, ``k * 48000.7`` at 16 kHz: straight at
   16 kHz it starts up to half a sample off.
3. **Start-up.** Import time of the plugin module and of onnxruntime, and the time from
   a fresh interpreter to the first embedding with each pass (what each command and
   each worker pays once).

Timings on a shared machine move with its load (recorded): compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # bench_scan: the users'-files helpers

BATCHES = (1, 2, 4, 8, 16)
N_SEGMENTS = 16
#: the forward passes timed: (label, backend, ONNX Runtime's CPU memory arena)
PASSES = (("onnx, arena", "onnx", True), ("onnx, no arena", "onnx", False), ("numpy", "numpy", None))


def rss_mb() -> float:
    """This process's resident memory now, MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak() -> None:
    """Start this process's peak resident memory (VmHWM) afresh (Linux 4.0 on)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    """This process's peak resident memory since :func:`reset_peak`, MB."""
    return int(re.search(r"VmHWM:\s*(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024


def session(arena: bool):
    """An InferenceSession of the shipped model as ``musicnn.onnx_session`` makes it, with
    the CPU memory arena on or off."""
    import onnxruntime

    from genre_tagger_plugins import musicnn

    options = musicnn.session_options()
    options.enable_cpu_mem_arena = arena
    return onnxruntime.InferenceSession(str(musicnn.ONNX_MODEL), options, providers=["CPUExecutionProvider"])


def child(patches_path: str, backend: str, arena: str, batch: int) -> None:
    """In a fresh process: time one pass setting on the patches saved at ``patches_path``
    and print its measurements as one JSON line."""
    from threadpoolctl import threadpool_limits

    from genre_tagger_plugins import musicnn

    patches = np.load(patches_path)
    if backend == "onnx":
        runner = session(arena == "on")
        embed = lambda x: runner.run(["embedding"], {"patches": x})[0]  # noqa: E731
    else:
        musicnn.weights()
        embed = musicnn.embed_numpy
    before = rss_mb()
    reset_peak()
    times = []
    with threadpool_limits(1):
        for _ in range(3):
            started = time.perf_counter()
            out = np.concatenate([embed(patches[k : k + batch]) for k in range(0, len(patches), batch)])
            times.append(time.perf_counter() - started)
    peak = peak_mb()
    print(json.dumps({"ms_per_segment": 1e3 * min(times) / len(patches), "peak_above_mb": peak - before,
                      "held_after_mb": rss_mb() - before, "embedding": out.tolist()}))


def batch_levers(patches: np.ndarray, tmp: Path) -> list[dict]:
    """Every pass setting at every batch size, each in a fresh process, one after another."""
    path = tmp / "patches.npy"
    np.save(path, patches)
    rows, reference = [], None
    for label, backend, arena in PASSES:
        for batch in BATCHES:
            done = subprocess.run([sys.executable, __file__, "--child", str(path), backend,
                                   "on" if arena else "off", str(batch)], capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            embedding = np.array(result.pop("embedding"), np.float32)
            reference = embedding if reference is None else reference
            rows.append({"pass": label, "batch": batch, **result,
                         "max_abs_diff_vs_first": float(np.abs(embedding - reference).max())})
            print(f"  {label:15} batch {batch:2}: {result['ms_per_segment']:.1f} ms/segment, "
                  f"peak +{result['peak_above_mb']:.0f} MB, held +{result['held_after_mb']:.0f} MB", flush=True)
    return rows


def straight_to_16k(data: Path, tmp: Path, n_clips: int = 5) -> dict:
    """Embeddings of real clips made 44.1 kHz stereo flac, decoded as scan does (22050 Hz,
    then 16 kHz per segment) and straight to 16 kHz; their differences and the time of
    the resampling skipped."""
    import librosa
    import soundfile
    import soxr

    from bench_scan import clips_by_genre, encode, read_clip, users_audio
    from genre_tagger import segments
    from genre_tagger.pipeline import audio
    from genre_tagger_plugins import musicnn

    genres = clips_by_genre(data)
    diffs, aligned, scale, resample_s, n_segments = [], [], [], 0.0, 0
    for genre in sorted(genres)[:n_clips]:
        path = tmp / f"{genre}.flac"
        encode(path, [users_audio(read_clip(genres[genre][0]), 44100)], 44100)
        today = np.array(segments.split(audio.load(path)))
        started = time.perf_counter()
        librosa.resample(today, orig_sr=segments.SAMPLE_RATE, target_sr=musicnn.MUSICNN_SR, axis=-1)
        resample_s += time.perf_counter() - started
        expected = musicnn.embed_numpy(musicnn.log_mel_patches(today))
        stereo, rate = soundfile.read(path, dtype="float32")  # [n, 2], scaled as the pipeline scales s16
        y16 = soxr.resample(stereo.mean(axis=1), rate, musicnn.MUSICNN_SR, quality="HQ")
        length = round(segments.SEGMENT_SAMPLES * musicnn.MUSICNN_SR / segments.SAMPLE_RATE)
        starts = [round(k * segments.SEGMENT_SAMPLES * musicnn.MUSICNN_SR / segments.SAMPLE_RATE) for k in range(len(today))]
        direct = np.array([y16[s : s + length] for s in starts if s + length <= len(y16)], np.float32)
        embedded = musicnn.embed_numpy(musicnn.log_mel_16k(direct))
        diff = np.abs(embedded - expected[: len(embedded)]).max(axis=1)  # per segment
        diffs += diff.tolist()
        aligned.append(float(diff[0]))  # segment 0 starts on a sample both ways: only the filters differ
        scale.append(float(np.abs(expected).mean()))
        n_segments += len(today)
    return {"clips": n_clips, "segments": len(diffs), "max_abs_diff": max(diffs), "median_abs_diff": float(np.median(diffs)),
            "first_segment_max_abs_diff": max(aligned), "mean_abs_embedding": float(np.mean(scale)),
            "second_resampling_ms_per_segment": 1e3 * resample_s / n_segments}


def start_up() -> dict:
    """Import times (``-X importtime``, cumulative, ms) and a fresh interpreter's time to its
    first embedding with each pass (the fastest of three)."""
    out = {}
    for module in ("genre_tagger_plugins.musicnn", "onnxruntime"):
        best = None
        for _ in range(3):
            done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                                  text=True, check=True)
            line = [ln for ln in done.stderr.splitlines() if re.search(rf"\|\s*{re.escape(module)}$", ln)][-1]
            cumulative = int(line.split("|")[1]) / 1000
            best = cumulative if best is None else min(best, cumulative)
        out[f"import_{module}_ms"] = best
    code = ("import time; t = time.perf_counter()\n"
            "import numpy as np\nfrom genre_tagger_plugins import musicnn\n"
            "musicnn.embed(np.zeros((1, 187, 96), np.float32)); print(time.perf_counter() - t)")
    for backend in ("onnx", "numpy"):
        env = {**os.environ, "GENRE_TAGGER_MUSICNN": backend}
        runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                     env=env).stdout) for _ in range(3)]
        out[f"first_embedding_{backend}_s"] = min(runs)
    return out


def real_patches(data: Path) -> np.ndarray:
    """musicnn's input for N_SEGMENTS real segments (float32 ``[16, 187, 96]``), from clips of several genres."""
    from bench_scan import clips_by_genre
    from genre_tagger import segments
    from genre_tagger.pipeline import audio
    from genre_tagger_plugins import musicnn

    genres = clips_by_genre(data)
    rows = [segments.split(audio.load(genres[g][1]))[:2] for g in sorted(genres)]
    return musicnn.log_mel_patches(np.concatenate(rows)[:N_SEGMENTS])


def report(batches: list[dict], direct: dict, start: dict, load: tuple, note: str) -> str:
    lines = [f"# musicnn levers (issue #23)\n\n`musicnn_levers.py`, {time.strftime('%Y-%m-%d')}; load average "
             f"{load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end. {note}\n",
             f"## Batch size and ONNX Runtime's memory arena\n\n{N_SEGMENTS} real segments, one thread, each setting "
             "in a fresh process; memory is above what the process held before its first pass.\n",
             "| pass | segments per pass | ms per segment | peak MB | held after MB | max abs diff |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['pass']} | {r['batch']} | {r['ms_per_segment']:.1f} | {r['peak_above_mb']:.0f} | "
              f"{r['held_after_mb']:.0f} | {r['max_abs_diff_vs_first']:.1e} |" for r in batches]
    lines += ["", "## Decoding straight to 16 kHz\n",
              f"{direct['clips']} GTZAN clips made 44.1 kHz stereo flac, {direct['segments']} segments: the embedding "
              f"(numpy pass both ways) decoded straight to 16 kHz differs from today's by up to "
              f"**{direct['max_abs_diff']:.3f}** (median over segments {direct['median_abs_diff']:.3f}; "
              f"{direct['first_segment_max_abs_diff']:.3f} on first segments, which start on a sample both ways), "
              f"against a mean |unit| of {direct['mean_abs_embedding']:.2f} and the 1e-4 allowed. The second "
              f"resampling it would skip takes {direct['second_resampling_ms_per_segment']:.1f} ms per segment.",
              "", "## Start-up\n",
              f"- import `genre_tagger_plugins.musicnn`: {start['import_genre_tagger_plugins.musicnn_ms']:.0f} ms "
              f"(onnxruntime is not imported with it); `import onnxruntime`: {start['import_onnxruntime_ms']:.0f} ms",
              f"- fresh interpreter to its first embedding: ONNX Runtime {start['first_embedding_onnx_s']:.2f} s, "
              f"numpy {start['first_embedding_numpy_s']:.2f} s"]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "musicnn_levers.md")
    parser.add_argument("--note", default="", help="a line for the results, e.g. what else ran on the machine")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="musicnn_levers_") as folder:
        tmp = Path(folder)
        print("batch size and arena ...", flush=True)
        batches = batch_levers(real_patches(args.data), tmp)
        print("straight to 16 kHz ...", flush=True)
        direct = straight_to_16k(args.data, tmp)
        print(f"  max abs diff {direct['max_abs_diff']:.3g}", flush=True)
        print("start-up ...", flush=True)
        start = start_up()
    text = report(batches, direct, start, load, args.note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"batches": batches, "straight_to_16k": direct,
                                                         "start_up": start}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
