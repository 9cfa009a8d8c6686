"""Does decoding only the analysed spans of an AAC file change its genre (#29 item 1)?

AAC's noise substitution (PNS) draws from a generator that each decoded frame advances,
so after packets are skipped the substituted noise of the first frames differs from a
full decode's. This script measures what that changes on real music: 4-minute tracks
made of GTZAN clips end to end, as ``benchmarks/bench_scan.py`` makes its library (44.1
or 48 kHz stereo), encoded as AAC in m4a at 128-256 kbit/s (PNS is most used at low
rates), are analysed at scan's default 10 segments twice -- skipping the packets far from
the spans, and decoding every packet -- and compared: the samples of the analysed
segments (largest difference, and the RMS of the difference against the signal's), each
feature extractor's columns, and the default model's genre and confidence per track.
Run from the project root::

    .venv/bin/python research/check_aac_spans.py [--tracks 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_scan  # noqa: E402  -- the benchmark's library builder: the same kind of files

from genre_tagger import segments  # noqa: E402
from genre_tagger.models import catalogue  # noqa: E402
from genre_tagger.models.predictor import predict_track  # noqa: E402
from genre_tagger.pipeline import analysis, audio  # noqa: E402
from genre_tagger.plugins import registry  # noqa: E402
from genre_tagger.segments import DEFAULT_MAX_SEGMENTS  # noqa: E402

RESULTS = ROOT / "research" / "results" / "check_aac_spans"
BIT_RATES = (128_000, 192_000, 256_000)


def analysed_spans(path: Path) -> list[tuple[int, int]]:
    """The spans (samples at 22050 Hz) that scan analyses by default."""
    n = segments.count(int(audio.probe(path).duration_s * segments.SAMPLE_RATE))
    return [(int(i) * segments.SEGMENT_SAMPLES, (int(i) + 1) * segments.SEGMENT_SAMPLES)
            for i in segments.spread(n, DEFAULT_MAX_SEGMENTS)]


def compare(path: Path, predictor, extractors) -> dict:
    """One track decoded and predicted with AAC packets skipped and with every packet decoded."""
    spans = analysed_spans(path)
    runs = {}
    for name, codecs in (("skipping", audio.SKIPPABLE_CODECS), ("full", audio.SKIPPABLE_CODECS - {"aac"})):
        saved, audio.SKIPPABLE_CODECS = audio.SKIPPABLE_CODECS, codecs
        try:
            samples = np.concatenate(list(audio.stream(path, 16 * segments.SEGMENT_SAMPLES, spans)))
            features = analysis.file_features(path, extractors, DEFAULT_MAX_SEGMENTS).features
        finally:
            audio.SKIPPABLE_CODECS = saved
        prediction = predict_track(predictor, features)
        vote = prediction.decide()
        runs[name] = {"samples": samples, "features": features, "genre": vote.genre,
                      "confidence": prediction.assess(predictor, vote).confidence}
    inside = np.zeros(len(runs["full"]["samples"]), bool)
    for start, stop in spans:
        inside[start:stop] = True
    difference = runs["skipping"]["samples"][inside] - runs["full"]["samples"][inside]
    signal = runs["full"]["samples"][inside]
    return {
        "file": path.name,
        "largest_sample_difference": float(np.abs(difference).max()),
        "rms_difference_to_signal": float(np.sqrt((difference ** 2).mean() / (signal ** 2).mean())),
        "largest_feature_difference": {name: float(np.abs(rows - runs["full"]["features"][name]).max()
                                                   / (np.abs(runs["full"]["features"][name]).max() + 1e-12))
                                       for name, rows in runs["skipping"]["features"].items()},
        "genre": [runs["skipping"]["genre"], runs["full"]["genre"]],
        "confidence": [round(runs["skipping"]["confidence"], 4), round(runs["full"]["confidence"], 4)],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=20)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    args = parser.parse_args(argv)
    bench_scan.VARIANTS = tuple(("m4a", rate, rate_bits) for rate in (44100, 48000) for rate_bits in BIT_RATES)
    predictor = catalogue.load(catalogue.default_models_dir() / "musicnn-logreg", registry())
    predictor.load_model()
    extractors = [registry().feature_extractor(name) for name in predictor.extractors]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tracks = bench_scan.build_library(Path(tmp) / "library", bench_scan.clips_by_genre(args.data), args.tracks, 4.0)
        for track in tracks:
            rows.append(compare(Path(track["path"]), predictor, extractors) | {"bit_rate": track["bit_rate"],
                                                                                "sample_rate": track["sample_rate"]})
            print(rows[-1], flush=True)
    summary = {
        "tracks": len(rows),
        "same_genre": sum(r["genre"][0] == r["genre"][1] for r in rows),
        "largest_confidence_change": max(abs(r["confidence"][0] - r["confidence"][1]) for r in rows),
        "largest_sample_difference": max(r["largest_sample_difference"] for r in rows),
        "largest_rms_difference_to_signal": max(r["rms_difference_to_signal"] for r in rows),
        "largest_feature_difference": {name: max(r["largest_feature_difference"][name] for r in rows)
                                       for name in rows[0]["largest_feature_difference"]},
    }
    print(summary)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps({"summary": summary, "tracks": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
