"""End-to-end speed and memory of ``genre-tagger scan``, against the naive per-segment reference.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_scan.py [--data ../shared/data/gtzan] [--tracks 24]
        [--model NAME] [--naive-tracks 2] [--long-minutes 120] [--cached-tracks 2000]
        [--note TEXT] [--out results.json]

A quick run: ``--tracks 4 --naive-tracks 1 --long-minutes 0 --cached-tracks 0 --repeat 1``.

What it does, in one run, in a temporary folder:

1. builds a library that looks like users' files: ``--tracks`` 4-minute tracks, each
   8 GTZAN clips of one genre end to end, resampled to 44.1 or 48 kHz and made stereo,
   encoded in turn as mp3 at 128-320 kbit/s, flac and m4a (AAC) (:data:`VARIANTS`);
2. uses a copy of the shipped models in ``pretrained/`` (taken at the start, so a
   retrain writing there cannot change them mid-run) and the model ``scan`` picks by
   default, or ``--model``; without shipped models it trains a KNN quickly on a few clips
   per genre (``genre-tagger retrain``, timed and reported);
3. times ``genre-tagger scan --no-cache`` (a subprocess, as a user runs it) at
   ``--jobs 1`` and ``--jobs 2``, with the default ``--max-segments`` (10) and with
   ``--max-segments 0`` (every segment), the fastest of ``--repeat`` runs each, and records the peak memory of the scan and its
   workers (sums of their PSS and of their RSS, sampled from /proc, and the
   largest single process from ``getrusage(RUSAGE_CHILDREN)``); with a model that reads
   musicnn, the every-segment ``--jobs 1`` scan once more with musicnn's numpy forward
   pass (``GENRE_TAGGER_MUSICNN=numpy``, the path before ONNX Runtime); then scans the first
   half of the library again (every segment) so that the difference gives the marginal
   throughput, without the fixed start-up of a command;
4. times the naive reference on the first ``--naive-tracks`` tracks: decode, cut into
   3-s segments, ``reference_features`` on every segment; and, interleaved with it on the
   same files and in this process, the plugin's batched ``extract`` (decode included);
   and musicnn's two forward passes, ONNX Runtime and numpy, on the same segments
   (milliseconds per segment, one thread each, and how far apart their outputs are);
5. times a second, cached scan: the library is scanned once with a cache, then
   ``--cached-tracks`` hard links to its files are given the same cached results, and the
   cached scan is timed in this process (``Scanner.scan``) and as a command, with a
   breakdown of where the time per track goes;
6. scans one ``--long-minutes`` mp3 (all segments, ``--jobs 1``) to show that memory
   does not grow with the length of a file;
7. times start-up: ``genre-tagger --help``, a scan of one 30-s GTZAN clip (``--no-cache``),
   and the same scan as the first after an install, when numba has yet to compile
   librosa's functions (``NUMBA_CACHE_DIR`` an empty folder: numba then finds none of the
   functions it compiled before).

Throughput is audio seconds per wall second (``x realtime``): "library" counts the whole
duration of the files scanned, "analysed" only the 3-s segments features were computed
for. Timings on a shared machine move with its load: ratios measured side by side in one
run are what to compare (the load average at start and end is recorded; ``--note`` says
what else ran). Prints a table and the goals of issue #29 against what was measured,
writes JSON (default benchmarks/results/bench_scan.json) and a Markdown table next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from genre_tagger.segments import DEFAULT_MAX_SEGMENTS

ROOT = Path(__file__).resolve().parents[1]
SR = 22050
CLIP_SECONDS = 30
#: what the tracks of the library are, in turn: (extension, sample rate in Hz, bit rate in
#: bit/s, None for lossless): mostly mp3 at the usual rates, some flac and AAC, at CD and
#: video rates, as a library ripped and bought over the years holds
VARIANTS = (("mp3", 44100, 320_000), ("flac", 44100, None), ("m4a", 44100, 256_000), ("mp3", 48000, 128_000),
            ("mp3", 44100, 192_000), ("flac", 48000, None), ("m4a", 48000, 192_000), ("mp3", 44100, 256_000))
#: the right channel lags the left by this much and is this much quieter, as a spaced
#: pair of microphones would have it: the channels differ, so decoding and the mix down
#: to mono do a stereo file's work
STEREO_DELAY_S = 0.0003
STEREO_GAIN = 0.9


# ------------------------------------------------------------------------------ audio


def encode(path: Path, chunks, sr: int = SR, bit_rate: int | None = None) -> float:
    """Encode float32 ``chunks`` (``[n]`` mono or ``[channels, n]``; an iterable, streamed) at
    ``sr`` Hz to ``path``; returns seconds written."""
    from genre_tagger.pipeline.encode import encode as encode_audio

    return encode_audio(path, chunks, sr, path.suffix.lstrip("."), bit_rate=bit_rate) / sr


def users_audio(y: np.ndarray, rate: int) -> np.ndarray:
    """A 22050 Hz mono clip ``y [n]`` as a user's file holds it: resampled to ``rate`` Hz
    (soxr, high quality) and stereo, float32 ``[2, n * rate / 22050]``."""
    import soxr

    left = soxr.resample(y, SR, rate, quality="HQ").astype(np.float32)
    delay = round(STEREO_DELAY_S * rate)
    right = STEREO_GAIN * np.concatenate([np.zeros(delay, np.float32), left[: len(left) - delay]])
    return np.stack([left, right])


def clips_by_genre(data: Path) -> dict[str, list[Path]]:
    genres = {}
    for folder in sorted((data / "genres").iterdir()):
        if folder.is_dir():
            clips = sorted(folder.glob("*.ogg"))
            if clips:
                genres[folder.name] = clips
    if not genres:
        sys.exit(f"{data}/genres: no clips found (pass --data)")
    return genres


def read_clip(path: Path) -> np.ndarray:
    import soundfile

    y, sr = soundfile.read(path, dtype="float32")
    assert sr == SR and y.ndim == 1, (path, sr, y.shape)
    return y


def build_library(folder: Path, genres: dict[str, list[Path]], n_tracks: int, minutes: float) -> list[dict]:
    """``n_tracks`` tracks of ``minutes``, each clips of one genre end to end, as users'
    files (:func:`users_audio`), formats, rates and bit rates in turn (:data:`VARIANTS`)."""
    folder.mkdir(parents=True)
    names = sorted(genres)
    per_track = max(1, round(minutes * 60 / CLIP_SECONDS))
    tracks = []
    for k in range(n_tracks):
        genre = names[k % len(names)]
        pool = genres[genre]
        start = (k // len(names)) * per_track
        clips = [pool[(start + i) % len(pool)] for i in range(per_track)]
        ext, rate, bit_rate = VARIANTS[k % len(VARIANTS)]
        path = folder / f"{k:03d}_{genre}.{ext}"
        seconds = encode(path, (users_audio(read_clip(c), rate) for c in clips), rate, bit_rate)
        tracks.append({"path": str(path), "genre": genre, "format": ext, "sample_rate": rate, "channels": 2,
                       "bit_rate": bit_rate, "seconds": seconds, "bytes": path.stat().st_size})
    return tracks


def library_summary(tracks: list[dict]) -> str:
    """What the library holds, in words: ``12 mp3 (44.1 kHz 320 kbit/s), ...``."""
    counts: dict[str, int] = {}
    for t in tracks:
        rate = f"{t['sample_rate'] / 1000:g} kHz"
        label = f"{t['format']} {rate}" + (f" {t['bit_rate'] // 1000} kbit/s" if t["bit_rate"] else "")
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{n} {label}" for label, n in counts.items()) + " (stereo)"


def long_file(path: Path, genres: dict[str, list[Path]], minutes: float) -> float:
    """One 44.1 kHz stereo mp3 (192 kbit/s) of ``minutes``, streamed from clips of every
    genre in turn (never all in memory)."""
    pool = [c for g in sorted(genres) for c in genres[g][:12]]
    n_clips = max(1, round(minutes * 60 / CLIP_SECONDS))
    return encode(path, (users_audio(read_clip(pool[i % len(pool)]), 44100) for i in range(n_clips)), 44100, 192_000)


# ------------------------------------------------------------------------ measurement


def _tree(root: int) -> list:
    """``root`` and all its descendants (psutil processes)."""
    import psutil

    try:
        process = psutil.Process(root)
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def _rss(processes: list) -> int:
    """Sum of the RSS of ``processes`` (bytes): cheap."""
    return sum(_memory(p, "memory_info", "rss") for p in processes)


def _pss(processes: list) -> int:
    """Sum of the PSS of ``processes`` (bytes): the kernel walks every mapping, milliseconds
    per process.

    RSS counts the pages processes share (the libraries every worker maps: numpy, scipy,
    LLVM) once per process; PSS divides each shared page among the processes that map
    it, so its sum is what the tree takes from the machine.
    """
    return sum(_memory(p, "memory_full_info", "pss") for p in processes)


def _memory(process, method: str, field: str) -> int:
    import psutil

    try:
        return getattr(getattr(process, method)(), field)
    except psutil.Error:  # ended between the listing and the reading
        return 0


def run_measured(command: list[str], env: dict | None = None) -> dict:
    """Run ``command``; wall time, exit code, peak RSS of its process tree, output tail.

    ``peak_tree_rss_mb`` / ``peak_tree_pss_mb``: the largest sums of RSS and of PSS over
    the command and its workers seen while sampling (see :func:`_rss`, :func:`_pss`). ``peak_process_rss_mb``: the largest RSS of any single
    process of the tree (``getrusage``, measured in a wrapper so runs don't mix).
    """
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys\n"
               "rc = subprocess.call(sys.argv[1:])\n"
               "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
               "sys.exit(rc)\n", *command]
    peak = [0, 0]
    started = time.perf_counter()
    process = subprocess.Popen(wrapper, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    done = threading.Event()

    def sample():
        # The sampler shares the machine with the scan: the process tree is looked up
        # and PSS read every second; RSS (cheap) every 0.2 s.
        pids, tick = [], 0
        while not done.wait(0.2):
            if tick % 5 == 0:
                pids = _tree(process.pid)
                peak[1] = max(peak[1], _pss(pids))
            peak[0] = max(peak[0], _rss(pids))
            tick += 1

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    maxrss = re.search(r"MAXRSS_KB (\d+)", err)
    inner = re.search(r"(\d+) files in ([\d.]+) s", err)
    return {
        "command": " ".join(command[1:]) if command[0] == sys.executable else " ".join(command),
        "returncode": process.returncode,
        "wall_s": wall,
        "scanner_s": float(inner.group(2)) if inner else None,  # what the command reports: scan only, no start-up
        "peak_tree_rss_mb": peak[0] / 2**20,
        "peak_tree_pss_mb": peak[1] / 2**20,
        "peak_process_rss_mb": int(maxrss.group(1)) / 1024 if maxrss else None,
        "output_tail": (out + err)[-1500:],
    }


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average_start": os.getloadavg()}
    try:
        model = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        info["cpu"] = model.group(1) if model else platform.processor()
        mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
        info["memory_gb"] = round(int(mem.group(1)) / 2**20, 1) if mem else None
    except OSError:
        pass
    from importlib import metadata

    for name in ("numpy", "scipy", "librosa", "numba", "av", "onnxruntime", "genre-tagger"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        info["git"] = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                                     capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return info


def cli() -> list[str]:
    """The ``genre-tagger`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("genre-tagger")
    return [str(script)] if script.exists() else [sys.executable, "-m", "genre_tagger.cli"]


# ------------------------------------------------------------------------------ steps


# The model every timed scan uses (set from --model in main(); None: the one scan picks).
MODEL: list[str | None] = [None]
REPEAT = [2]  # runs of each scan; the fastest is reported (--repeat)


def model_option() -> list[str]:
    """The ``--model`` option of the timed scans: none when scan's default is measured."""
    return ["--model", MODEL[0]] if MODEL[0] else []


def models_dir(tmp: Path, genres: dict[str, list[Path]], clips_per_genre: int, jobs: int, report: dict) -> Path:
    """A copy of the shipped models (what a user has) when they hold the model measured, else
    a KNN trained here; records which model the scans use in ``report["model"]``."""
    from genre_tagger.models import catalogue
    from genre_tagger.plugins import registry

    shipped = catalogue.default_models_dir()
    names = catalogue.available(shipped)
    if names and (MODEL[0] is None or MODEL[0] in names):
        snapshot = tmp / "pretrained"
        shutil.copytree(shipped, snapshot, ignore=shutil.ignore_patterns("__pycache__"))
        name = MODEL[0] or catalogue.best_model(snapshot)
        extractors = sorted(catalogue.load(snapshot / name, registry()).extractors)
        report["model"] = {"source": f"pretrained/{name}" + ("" if MODEL[0] else " (scan's default)"),
                           "dir": str(snapshot), "name": name, "scan_default": MODEL[0] is None,
                           "feature_extractors": extractors}
        return snapshot
    train = tmp / "train"
    for genre, clips in genres.items():
        (train / genre).mkdir(parents=True)
        for clip in clips[-clips_per_genre:]:  # the last clips: the library uses the first ones
            (train / genre / clip.name).symlink_to(clip)
    out = tmp / "models"
    result = run_measured([*cli(), "retrain", "--data", str(train), "--out", str(out), "--models", "knn",
                           "--jobs", str(jobs), "--no-cache"])
    if result["returncode"] != 0:
        sys.exit("training a model failed:\n" + result["output_tail"])
    report["model"] = {"source": f"trained here: knn on {clips_per_genre} clips per genre ({shipped} has no {MODEL[0]})",
                       "dir": str(out), "name": "knn", "train_wall_s": result["wall_s"], "scan_default": False,
                       "feature_extractors": ["gtzan57"]}
    MODEL[0] = "knn"
    return out


def _scan(library: Path, models: Path, jobs: int, max_segments: int, env: dict | None = None) -> dict:
    """The fastest of ``REPEAT[0]`` runs of the same scan (the others were slowed by
    something else on the machine), with the largest memory peaks of all of them;
    ``env``: variables set for the command (on top of this process's)."""
    runs = []
    for _ in range(REPEAT[0]):
        result = run_measured([*cli(), "scan", str(library), "--models-dir", str(models), *model_option(), "--no-cache",
                               "-q", "--jobs", str(jobs), "--max-segments", str(max_segments)],
                              env={**os.environ, **env} if env else None)
        if result["returncode"] != 0:
            print(result["output_tail"], file=sys.stderr)
        runs.append(result)
    fastest = min(runs, key=lambda r: r["wall_s"])
    for key in ("peak_tree_rss_mb", "peak_tree_pss_mb", "peak_process_rss_mb"):
        fastest[key] = max(r[key] or 0 for r in runs)
    fastest["wall_s_runs"] = [r["wall_s"] for r in runs]
    return fastest


def scan_runs(library: Path, models: Path, tracks: list[dict], jobs_list, report: dict) -> None:
    """The scans of the whole library, then (every segment) of its first half.

    A command pays a fixed start-up (imports, numba caches, the model; the same again in
    each worker) before its first file. The difference between the whole library and
    its half cancels it: the ``marginal`` throughput is what every further track costs,
    i.e. the rate at which a large library is scanned.
    """
    audio_s = sum(t["seconds"] for t in tracks)
    report["scans"] = []
    for max_segments in (DEFAULT_MAX_SEGMENTS, 0):
        for jobs in jobs_list:
            result = _scan(library, models, jobs, max_segments)
            analysed = len(tracks) * max_segments * 3.0 if max_segments else audio_s  # spread 3-s segments per track
            result.update(jobs=jobs, max_segments=max_segments, audio_s=audio_s,
                          library_x_realtime=audio_s / result["wall_s"],
                          analysed_x_realtime=min(analysed, audio_s) / result["wall_s"])
            report["scans"].append(result)
            print(f"  scan --jobs {jobs} --max-segments {max_segments}: {result['wall_s']:.1f} s, "
                  f"{result['library_x_realtime']:.0f}x realtime, peak PSS {result['peak_tree_pss_mb']:.0f} MB", flush=True)
    if "musicnn" in report["model"]["feature_extractors"]:
        # the same every-segment scan with musicnn's numpy pass: what ONNX Runtime changed, end to end
        result = _scan(library, models, 1, 0, env={"GENRE_TAGGER_MUSICNN": "numpy"})
        result.update(jobs=1, max_segments=0, audio_s=audio_s, library_x_realtime=audio_s / result["wall_s"],
                      analysed_x_realtime=audio_s / result["wall_s"], musicnn="numpy")
        report["scan_numpy"] = result
        print(f"  scan --jobs 1 --max-segments 0, GENRE_TAGGER_MUSICNN=numpy: {result['wall_s']:.1f} s, "
              f"{result['library_x_realtime']:.0f}x realtime", flush=True)
    half = library.parent / "half_library"
    half.mkdir()
    first_half = tracks[: len(tracks) // 2]
    for track in first_half:
        os.link(track["path"], half / Path(track["path"]).name)
    half_s = sum(t["seconds"] for t in first_half)
    report["marginal"] = []
    for jobs in jobs_list:
        whole = next(r for r in report["scans"] if r["jobs"] == jobs and r["max_segments"] == 0)
        result = _scan(half, models, jobs, 0)
        report["marginal"].append({"jobs": jobs, "half_tracks": len(first_half), "half_wall_s": result["wall_s"],
                                   "whole_wall_s": whole["wall_s"],
                                   "x_realtime": (audio_s - half_s) / (whole["wall_s"] - result["wall_s"])})
        print(f"  half the library, --jobs {jobs}: {result['wall_s']:.1f} s; marginal "
              f"{report['marginal'][-1]['x_realtime']:.0f}x realtime", flush=True)


def _naive_and_fast(track, extractor, analysis, audio, segments, reference_features) -> dict:
    started = time.perf_counter()
    y = audio.load(track["path"])
    naive = np.stack([reference_features(s) for s in segments.split(y)])
    naive_s = time.perf_counter() - started
    started = time.perf_counter()
    fast = analysis.file_features(track["path"], [extractor], max_segments=None).features[extractor.name]
    fast_s = time.perf_counter() - started
    assert fast.shape == naive.shape, (fast.shape, naive.shape)
    scale = np.maximum(np.abs(naive), 1e-9)
    print(f"  naive {track['format']}: {naive_s:.1f} s vs extract {fast_s:.1f} s ({naive_s / fast_s:.1f}x)", flush=True)
    return {"path": track["path"], "format": track["format"], "audio_s": track["seconds"], "segments": len(naive),
            "naive_s": naive_s, "fast_s": fast_s, "max_rel_diff": float(np.max(np.abs(fast - naive) / scale))}


def naive_vs_fast(tracks: list[dict], n: int, report: dict) -> None:
    """Per file, decode included: reference_features per segment vs the plugin's extract."""
    from genre_tagger import segments
    from genre_tagger.pipeline import analysis, audio
    from genre_tagger.spectrum import Segments
    from genre_tagger_plugins.gtzan57 import Gtzan57, reference_features

    extractor = Gtzan57()
    extractor.extract(Segments(np.zeros((2, segments.SEGMENT_SAMPLES), np.float32)))  # compile / load numba kernels
    rows = []
    try:  # both sides on one core, BLAS included (extract limits BLAS itself; the reference does not)
        from threadpoolctl import threadpool_limits
    except ImportError:
        from contextlib import nullcontext as threadpool_limits
    with threadpool_limits(1):
        for track in tracks[:n]:
            rows.append(_naive_and_fast(track, extractor, analysis, audio, segments, reference_features))
    audio_s = sum(r["audio_s"] for r in rows)
    report["naive"] = {
        "tracks": rows,
        "naive_x_realtime": audio_s / sum(r["naive_s"] for r in rows),
        "fast_in_process_x_realtime": audio_s / sum(r["fast_s"] for r in rows),
        "speedup_in_process": sum(r["naive_s"] for r in rows) / sum(r["fast_s"] for r in rows),
        "max_rel_diff_fast_vs_naive": max(r["max_rel_diff"] for r in rows),
    }


def embed_timing(track: dict, n_segments: int, report: dict) -> None:
    """musicnn's forward passes, ONNX Runtime and numpy, on the first ``n_segments`` segments
    of ``track`` as scan decodes them: milliseconds per segment (the faster of two rounds,
    interleaved, in passes of ``EMBED_SEGMENTS``, one thread each) and their largest
    difference."""
    from threadpoolctl import threadpool_limits

    from genre_tagger import segments
    from genre_tagger.pipeline import audio
    from genre_tagger_plugins import musicnn

    patches = musicnn.log_mel_patches(np.array(segments.split(audio.load(track["path"]))[:n_segments]))
    step = musicnn.EMBED_SEGMENTS
    passes = {"onnx": musicnn.embed_onnx, "numpy": musicnn.embed_numpy}
    seconds = {name: [] for name in passes}
    outputs = {}
    with threadpool_limits(1):
        for name, embed in passes.items():
            embed(patches[:step])  # warm: the session, the weights
        for _ in range(2):
            for name, embed in passes.items():
                started = time.perf_counter()
                outputs[name] = np.concatenate([embed(patches[k : k + step]) for k in range(0, len(patches), step)])
                seconds[name].append(time.perf_counter() - started)
    ms = {name: 1e3 * min(s) / len(patches) for name, s in seconds.items()}
    report["embed"] = {"track": track["path"], "segments": len(patches), "batch": step,
                       "onnx_ms_per_segment": ms["onnx"], "numpy_ms_per_segment": ms["numpy"],
                       "speedup": ms["numpy"] / ms["onnx"],
                       "max_abs_diff": float(np.abs(outputs["onnx"] - outputs["numpy"]).max())}
    print(f"  musicnn embed: onnx {ms['onnx']:.1f} ms/segment, numpy {ms['numpy']:.1f} ms/segment "
          f"(max abs diff {report['embed']['max_abs_diff']:.1e})", flush=True)


def time_breakdown(tracks: list[dict], extractor_names: list[str], report: dict) -> None:
    """Where a track's time goes at scan's default ``--max-segments``, in this process on
    one thread: decoding as scan does (every packet decoded, only the analysed segments
    converted to 22050 Hz mono), the shared spectra of those segments, then each feature
    extractor on them (seconds per track, mean over ``tracks``)."""
    from threadpoolctl import threadpool_limits

    from genre_tagger import segments
    from genre_tagger.pipeline import audio
    from genre_tagger.plugins import registry
    from genre_tagger.spectrum import Segments

    extractors = [registry().feature_extractor(name) for name in extractor_names]
    warm = Segments(np.zeros((2, segments.SEGMENT_SAMPLES), np.float32))
    for extractor in extractors:
        extractor.extract(warm)  # numba kernels, weights, the ONNX Runtime session: start-up, not per track
    totals: dict[str, float] = {}
    with threadpool_limits(1):
        for track in tracks:
            wanted = segments.spread(segments.count(int(audio.probe(track["path"]).duration_s * segments.SAMPLE_RATE)),
                                     DEFAULT_MAX_SEGMENTS)
            spans = [(int(i) * segments.SEGMENT_SAMPLES, (int(i) + 1) * segments.SEGMENT_SAMPLES) for i in wanted]
            started = time.perf_counter()
            y = np.concatenate(list(audio.stream(track["path"], 16 * segments.SEGMENT_SAMPLES, spans)))
            steps = {"decode (the analysed segments to 22050 Hz mono)": time.perf_counter() - started}
            batch = Segments(np.array(segments.split(y)[wanted]))
            started = time.perf_counter()
            batch.log_mel  # noqa: B018 -- the STFT, power and log-mel every extractor shares
            steps["shared spectra (STFT, log-mel)"] = time.perf_counter() - started
            for extractor in extractors:
                started = time.perf_counter()
                extractor.extract(batch)
                steps[extractor.name] = time.perf_counter() - started
            for step, seconds in steps.items():
                totals[step] = totals.get(step, 0.0) + seconds / len(tracks)
    report["breakdown"] = {"tracks": [t["path"] for t in tracks], "segments": DEFAULT_MAX_SEGMENTS, "s_per_track": totals,
                           "total_s_per_track": sum(totals.values())}
    print(f"  per track at --max-segments {DEFAULT_MAX_SEGMENTS}: " + ", ".join(f"{k} {v:.2f} s" for k, v in totals.items()), flush=True)


def cached_runs(tmp: Path, library: Path, models: Path, n_links: int, report: dict) -> None:
    """Scan once with a cache, give ``n_links`` hard links the cached results, time a cached scan."""
    from genre_tagger.models import catalogue
    from genre_tagger.pipeline import cache as cache_module
    from genre_tagger.plugins import registry
    from genre_tagger.tagging import tags
    from genre_tagger.tagging.library import walk
    from genre_tagger.tagging.scan import ScanOptions, Scanner

    cache_path = tmp / "cache.sqlite"
    first = run_measured([*cli(), "scan", str(library), "--models-dir", str(models), *model_option(),
                          "--cache", str(cache_path), "-q", "--jobs", "2"])
    originals = sorted(p for p in library.iterdir() if p.is_file())
    links = tmp / "links"
    links.mkdir()
    name = report["model"]["name"]
    model = catalogue.load(Path(models) / name, registry())
    model_key = cache_module.model_key(model.name, model.checksum)
    settings = ScanOptions().cache_settings()
    with cache_module.Cache(cache_path) as cache:
        for i in range(n_links):
            source = originals[i % len(originals)]
            target = links / f"{i:05d}_{source.name}"
            os.link(source, target)
            result = cache.get_result(cache_module.file_key(source), model_key, settings)
            if result is None:
                sys.exit(f"{source}: not in the cache after the first scan")
            key = cache_module.file_key(target)
            cache.put_result(key, model_key, settings, dict(result, stamp=list(key[1:])))  # TrackPrediction JSON
    files = list(walk([links], lambda error: None))
    with cache_module.Cache(cache_path) as cache:
        Scanner(model, ScanOptions(), cache).scan(files[:20])  # warm: imports, SQLite pages
        started = time.perf_counter()
        summary = Scanner(model, ScanOptions(), cache).scan(files)
        in_process = time.perf_counter() - started
        assert summary.from_cache == len(files), (summary.from_cache, len(files))
        # where the time goes, per track
        started = time.perf_counter()
        keys = [cache_module.file_key(p) for p in files]
        key_s = time.perf_counter() - started
        started = time.perf_counter()
        for key in keys:
            cache.get_result(key, model_key, settings)
        lookup_s = time.perf_counter() - started
    started = time.perf_counter()
    for path in files:
        tags.read_genres(path)
    read_tags_s = time.perf_counter() - started
    command = run_measured([*cli(), "scan", str(links), "--models-dir", str(models), *model_option(),
                            "--cache", str(cache_path), "-q"])
    report["cached"] = {
        "first_scan_with_cache_wall_s": first["wall_s"],
        "tracks": len(files),
        "in_process_s": in_process,
        "in_process_tracks_per_s": len(files) / in_process,
        "command_wall_s": command["wall_s"],
        "command_scanner_s": command["scanner_s"],
        "command_tracks_per_s": len(files) / command["wall_s"],
        "command_scanner_tracks_per_s": len(files) / command["scanner_s"] if command["scanner_s"] else None,
        "breakdown_us_per_track": {
            "file_key_stat": 1e6 * key_s / len(files),
            "sqlite_get_result": 1e6 * lookup_s / len(files),
            "tags_read_genres (dry-run tag planning)": 1e6 * read_tags_s / len(files),
            "total_scan": 1e6 * in_process / len(files),
        },
    }
    print(f"  cached scan: {len(files) / in_process:.0f} tracks/s in process, "
          f"{len(files) / command['wall_s']:.0f} tracks/s as a command", flush=True)


def long_run(tmp: Path, genres, minutes: float, models: Path, report: dict) -> None:
    path = tmp / "long" / "long.mp3"
    path.parent.mkdir()
    started = time.perf_counter()
    seconds = long_file(path, genres, minutes)
    encode_s = time.perf_counter() - started
    result = run_measured([*cli(), "scan", str(path.parent), "--models-dir", str(models), *model_option(), "--no-cache",
                           "-q", "--jobs", "1", "--max-segments", "0"])
    result.update(audio_s=seconds, bytes=path.stat().st_size, encode_s=encode_s,
                  library_x_realtime=seconds / result["wall_s"])
    report["long_file"] = result
    print(f"  {minutes:.0f}-minute file: {result['wall_s']:.1f} s, peak RSS {result['peak_tree_rss_mb']:.0f} MB", flush=True)


def startup_runs(tmp: Path, clip: Path, models: Path, report: dict) -> None:
    """``--help``, a one-clip scan and the same as a first use (see the module docstring),
    the fastest of ``REPEAT[0]`` runs each but the first use (one run: a second would find
    what the first compiled)."""
    folder = tmp / "one-clip"
    folder.mkdir()
    shutil.copy(clip, folder / clip.name)
    scan = [*cli(), "scan", str(folder), "--models-dir", str(models), *model_option(), "--no-cache", "-q"]
    runs = {"help": [run_measured([*cli(), "--help"]) for _ in range(max(REPEAT[0], 3))],
            "one_clip": [run_measured(scan) for _ in range(REPEAT[0])],
            "first_use": [run_measured(scan, env={**os.environ, "NUMBA_CACHE_DIR": str(tmp / "numba-empty")})]}
    report["startup"] = {name: {"wall_s": min(r["wall_s"] for r in done), "wall_s_runs": [r["wall_s"] for r in done],
                                "returncode": max(r["returncode"] for r in done)} for name, done in runs.items()}
    report["startup"]["clip"] = clip.name
    print("  start-up: " + ", ".join(f"{name} {report['startup'][name]['wall_s']:.2f} s" for name in runs), flush=True)


# ---------------------------------------------------------------------------- report


def _peaks(run: dict) -> str:
    return (f"{run.get('peak_tree_pss_mb', 0):.0f} / {run['peak_tree_rss_mb']:.0f} / "
            f"{run['peak_process_rss_mb'] or 0:.0f}")


def table(report: dict) -> str:
    lines = ["| measurement | wall s | x realtime (library) | x realtime (analysed) | "
             "peak MB: tree PSS / tree RSS / largest process RSS |",
             "|---|---:|---:|---:|---:|"]
    numpy_scan = report.get("scan_numpy")
    for s in report.get("scans", []) + ([numpy_scan] if numpy_scan else []):
        label = f"scan --no-cache --jobs {s['jobs']} --max-segments {s['max_segments']}"
        label += ", GENRE_TAGGER_MUSICNN=numpy" if s.get("musicnn") == "numpy" else ""
        lines.append(f"| {label} | {s['wall_s']:.1f} | {s['library_x_realtime']:.0f} | {s['analysed_x_realtime']:.0f} | "
                     f"{_peaks(s)} |")
    naive = report.get("naive")
    if naive:
        seconds = sum(r["naive_s"] for r in naive["tracks"])
        fast = sum(r["fast_s"] for r in naive["tracks"])
        n = len(naive["tracks"])
        lines.append(f"| naive reference_features, {n} tracks, decode incl. | {seconds:.1f} | {naive['naive_x_realtime']:.1f} | "
                     f"{naive['naive_x_realtime']:.1f} | |")
        lines.append(f"| gtzan57 extract, same {n} tracks, same process | {fast:.1f} | {naive['fast_in_process_x_realtime']:.0f} | "
                     f"{naive['fast_in_process_x_realtime']:.0f} | |")
    long = report.get("long_file")
    if long:
        lines.append(f"| {long['audio_s'] / 60:.0f}-minute mp3, scan --jobs 1 --max-segments 0 | {long['wall_s']:.1f} | "
                     f"{long['library_x_realtime']:.0f} | {long['library_x_realtime']:.0f} | "
                     f"{_peaks(long)} |")
    out = ["\n".join(lines), ""]
    every_segment = {s["jobs"]: s for s in report.get("scans", []) if s["max_segments"] == 0}  # by --jobs
    embed = report.get("embed")
    if embed:
        out.append(f"- musicnn's forward pass, {embed['segments']} segments of the first track in passes of "
                   f"{embed['batch']}, one thread: ONNX Runtime **{embed['onnx_ms_per_segment']:.1f} ms** per segment, "
                   f"numpy {embed['numpy_ms_per_segment']:.1f} ms: **{embed['speedup']:.2f}x** (largest difference of "
                   f"an embedding unit: {embed['max_abs_diff']:.1e})")
    breakdown = report.get("breakdown")
    if breakdown:
        steps = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in breakdown["s_per_track"].items())
        out.append(f"- where a track's time goes at `--max-segments {DEFAULT_MAX_SEGMENTS}` (in process, one thread, mean of "
                   f"{len(breakdown['tracks'])} tracks): {steps}; **{breakdown['total_s_per_track']:.2f} s** in all")
    if naive:
        out.append(f"- speed-up of extract over the naive reference, same files, same process: "
                   f"**{naive['speedup_in_process']:.1f}x** (largest relative difference of a feature: "
                   f"{naive['max_rel_diff_fast_vs_naive']:.1e})")
        for jobs, s in sorted(every_segment.items()):
            out.append(f"- `scan --jobs {jobs} --max-segments 0` (end to end, as a command, start-up included) vs naive: "
                       f"**{s['library_x_realtime'] / naive['naive_x_realtime']:.1f}x**")
        if numpy_scan:
            out.append(f"- the same at `--jobs 1` with musicnn's numpy pass: "
                       f"**{numpy_scan['library_x_realtime'] / naive['naive_x_realtime']:.1f}x** the naive reference")
    if numpy_scan and 1 in every_segment:
        out.append(f"- ONNX Runtime vs the numpy pass, every segment at `--jobs 1`, end to end: "
                   f"**{numpy_scan['wall_s'] / every_segment[1]['wall_s']:.2f}x** as fast")
    for jobs, s in sorted(every_segment.items()):
        if jobs > 1 and 1 in every_segment:
            out.append(f"- gain from `--jobs {jobs}` over `--jobs 1` (every segment, start-up included): "
                       f"**{every_segment[1]['wall_s'] / s['wall_s']:.2f}x**")
    marginal = {m["jobs"]: m for m in report.get("marginal", [])}
    for jobs, m in sorted(marginal.items()):
        versus = f", **{m['x_realtime'] / naive['naive_x_realtime']:.1f}x** the naive reference" if naive else ""
        gain = f", **{m['x_realtime'] / marginal[1]['x_realtime']:.2f}x** `--jobs 1`" if jobs > 1 and 1 in marginal else ""
        out.append(f"- marginal throughput at `--jobs {jobs}` (every segment; the whole library minus its first "
                   f"{m['half_tracks']} tracks, so start-up cancels): **{m['x_realtime']:.0f}x realtime**{versus}{gain}")
    cached = report.get("cached")
    if cached:
        b = cached["breakdown_us_per_track"]
        out.append(f"- cached re-scan of {cached['tracks']} tracks: **{cached['in_process_tracks_per_s']:.0f} tracks/s** "
                   f"(Scanner.scan in process), {cached['command_tracks_per_s']:.0f} tracks/s as a command "
                   f"({cached['command_wall_s']:.1f} s incl. start-up). Per track: stat {b['file_key_stat']:.0f} µs, "
                   f"SQLite lookup {b['sqlite_get_result']:.0f} µs, reading the file's tags "
                   f"{b['tags_read_genres (dry-run tag planning)']:.0f} µs, whole scan {b['total_scan']:.0f} µs")
    if long:
        four = every_segment.get(1)
        out.append(f"- memory with a {long['audio_s'] / 60:.0f}-minute file: {_peaks(long)} MB peak "
                   + (f"vs {_peaks(four)} MB for 4-minute tracks (same settings)" if four else ""))
    startup = report.get("startup")
    if startup:
        out.append(f"- start-up: `genre-tagger --help` **{startup['help']['wall_s']:.2f} s**; a scan of one 30-s clip "
                   f"({startup['clip']}, `--no-cache`) **{startup['one_clip']['wall_s']:.1f} s**, and as the first scan "
                   f"after an install (numba compiling librosa's functions) **{startup['first_use']['wall_s']:.1f} s**")
    m = report["machine"]
    out.append(f"- machine: {m.get('cpu')}, {m.get('cpus')} CPUs, {m.get('memory_gb')} GB, {m.get('platform')}; "
               f"load average at start {m['load_average_start'][0]:.1f}, at end {m.get('load_average_end', [0])[0]:.1f}")
    goals = goal_rows(report)
    if goals:
        out += ["", "Issue #29's goals, measured in this run:", "",
                "| goal | target | measured | met |", "|---|---|---|---|"]
        out += [f"| {goal} | {target} | {measured} | {'yes' if met else 'no'} |" for goal, target, measured, met in goals]
    return "\n".join(out)


def goal_rows(report: dict) -> list[tuple[str, str, str, bool]]:
    """Issue #29's goals against this run: (goal, target, measured, met) for each that was measured."""
    rows = []
    scans = {(s["jobs"], s["max_segments"]): s for s in report.get("scans", [])}
    naive = report.get("naive")
    if naive and (1, 0) in scans:
        ratio = scans[1, 0]["library_x_realtime"] / naive["naive_x_realtime"]
        rows.append(("every segment, `--jobs 1`, end to end vs the naive reference", ">= 5x", f"{ratio:.1f}x", ratio >= 5))
    if (1, DEFAULT_MAX_SEGMENTS) in scans:
        s = scans[1, DEFAULT_MAX_SEGMENTS]
        per_track = s["wall_s"] / len(report["library"]["tracks"])
        rows.append(("default settings, `--jobs 1`", ">= 800x real time",
                     f"{s['library_x_realtime']:.0f}x ({per_track:.2f} s a track)", s["library_x_realtime"] >= 800))
    cached = report.get("cached")
    if cached:
        rate = cached["command_tracks_per_s"]
        rows.append(("cached re-scan, as a command", ">= 1000 tracks/s", f"{rate:.0f} tracks/s", rate >= 1000))
    one = [s for (jobs, _), s in scans.items() if jobs == 1]
    if one:
        pss = max(s["peak_tree_pss_mb"] for s in one)
        rows.append(("process tree at `--jobs 1`, peak PSS", "< 600 MB", f"{pss:.0f} MB", pss < 600))
    if report.get("embed"):
        diff = report["embed"]["max_abs_diff"]
        rows.append(("the embedding within 1e-4 of the numpy pass's", "<= 1e-4", f"{diff:.1e}", diff <= 1e-4))
    two = [s for (jobs, _), s in scans.items() if jobs == 2]
    if two:
        pss = max(s["peak_tree_pss_mb"] for s in two)
        rows.append(("process tree at `--jobs 2`, peak PSS", "< 1024 MB", f"{pss:.0f} MB", pss < 1024))
    startup = report.get("startup")
    if startup:
        rows.append(("`genre-tagger --help`", "< 0.5 s", f"{startup['help']['wall_s']:.2f} s", startup["help"]["wall_s"] < 0.5))
        for name, label in (("one_clip", "a scan of one clip"), ("first_use", "the first scan after install, one clip")):
            seconds = startup[name]["wall_s"]
            rows.append((label, "< 2 s", f"{seconds:.1f} s", seconds < 2))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    parser.add_argument("--tracks", type=int, default=24, help="tracks in the library (default 24)")
    parser.add_argument("--track-minutes", type=float, default=4.0)
    parser.add_argument("--naive-tracks", type=int, default=2, help="tracks timed with the naive reference (default 2)")
    parser.add_argument("--long-minutes", type=float, default=120.0, help="length of the long file; 0 skips it")
    parser.add_argument("--cached-tracks", type=int, default=2000, help="hard links scanned from the cache; 0 skips")
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs values to time (default 1,2)")
    parser.add_argument("--train-clips", type=int, default=6, help="clips per genre when a model must be trained")
    parser.add_argument("--model", default=None,
                        help="model the scans use (default: the one `genre-tagger scan` picks, as a user gets it; "
                             "'lightgbm' reads only the gtzan57 features, like the naive reference)")
    parser.add_argument("--embed-segments", type=int, default=40,
                        help="segments of the first track on which musicnn's two forward passes are timed (0 skips)")
    parser.add_argument("--breakdown-tracks", type=int, default=4,
                        help="tracks on which the time of each step at scan's default --max-segments is measured (0 skips)")
    parser.add_argument("--no-startup", dest="startup", action="store_false", help="skip the start-up timings")
    parser.add_argument("--note", default="", help="a line for the results, e.g. what else ran on the machine")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each scan, the fastest reported (default 2: a shared machine's noise only slows)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_scan.json")
    parser.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it")
    args = parser.parse_args()
    jobs_list = [int(j) for j in args.jobs.split(",") if j]
    MODEL[0] = args.model
    REPEAT[0] = args.repeat

    report: dict = {"machine": machine(), "settings": {k: str(v) for k, v in vars(args).items()},
                    "date": time.strftime("%Y-%m-%d"), "note": args.note}
    started = time.perf_counter()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench_scan_"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        genres = clips_by_genre(args.data)
        print(f"building {args.tracks} tracks of {args.track_minutes:g} min in {tmp} ...", flush=True)
        t = time.perf_counter()
        tracks = build_library(tmp / "library", genres, args.tracks, args.track_minutes)
        audio_s = sum(t_["seconds"] for t_ in tracks)
        report["library"] = {"tracks": tracks, "audio_s": audio_s, "build_s": time.perf_counter() - t}
        models = models_dir(tmp, genres, args.train_clips, max(jobs_list), report)
        print(f"library: {library_summary(tracks)}; model: {report['model']['source']}", flush=True)
        scan_runs(tmp / "library", models, tracks, jobs_list, report)
        if args.naive_tracks:
            naive_vs_fast(tracks, args.naive_tracks, report)
        if args.embed_segments and "musicnn" in report["model"]["feature_extractors"]:
            embed_timing(tracks[0], args.embed_segments, report)
        if args.breakdown_tracks:
            time_breakdown(tracks[: args.breakdown_tracks], report["model"]["feature_extractors"], report)
        if args.cached_tracks:
            cached_runs(tmp, tmp / "library", models, args.cached_tracks, report)
        if args.long_minutes:
            long_run(tmp, genres, args.long_minutes, models, report)
        if args.startup:
            startup_runs(tmp, next(iter(genres.values()))[0], models, report)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    report["machine"]["load_average_end"] = os.getloadavg()
    report["total_wall_s"] = time.perf_counter() - started
    text = table(report)
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    md = args.out.with_suffix(".md")
    note = f"\n\n{args.note}" if args.note else ""
    md.write_text(f"# bench_scan\n\n`{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`, "
                  f"{report['total_wall_s'] / 60:.1f} min in all, {time.strftime('%Y-%m-%d')}. Model: "
                  f"{report['model']['source']}. Library: {len(tracks)} tracks of {args.track_minutes:g} min, "
                  f"{library_summary(tracks)}.{note}\n\n{text}\n")
    print(f"\nwrote {args.out} and {md}")


if __name__ == "__main__":
    main()
