"""What the default model's prediction step costs a track, beside its analysis (#20, #23).

Times, in this process, the two steps that follow a track's analysis in ``scan``: the
model's probabilities for its segments and the assessment's novelty distances (the
Mahalanobis distances of the not-music and outside-genre tests), on a track of
``--segments`` rows (scan's default), with BLAS on one thread as scan runs them
(``pipeline.analysis.one_blas_thread``) and, side by side, on BLAS's own thread pool.
The cost does not depend on the values, so the rows are random.

    .venv/bin/python benchmarks/bench_assessment.py [--segments 10] [--repeat 300]
"""

from __future__ import annotations

import argparse
import datetime
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from genre_tagger.models import catalogue
from genre_tagger.pipeline.analysis import one_blas_thread
from genre_tagger.plugins import registry
from genre_tagger.segments import DEFAULT_MAX_SEGMENTS

ROOT = Path(__file__).resolve().parents[1]


def per_segment_ms(step, repeat: int, segments: int) -> float:
    step()  # warm
    started = time.perf_counter()
    for _ in range(repeat):
        step()
    return (time.perf_counter() - started) / repeat / segments * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=DEFAULT_MAX_SEGMENTS)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_assessment.md")
    args = parser.parse_args()
    plugins = registry()
    (model,) = catalogue.choose(None, None, plugins)
    rng = np.random.default_rng(0)
    rows = {name: rng.standard_normal((args.segments, len(plugins.feature_extractor(name).feature_names)))
            for name in model.extractors}
    lines = [f"# The prediction step of `{model.name}`", "",
             f"`bench_assessment.py`, {datetime.date.today()}: a track of {args.segments} segments, "
             f"mean of {args.repeat} runs, milliseconds per segment.", "",
             "| step | BLAS on one thread (as scan) | BLAS's own thread pool |", "|---|---:|---:|"]
    for label, step in (("probabilities", lambda: model.predict_proba(rows)), ("novelty distances", lambda: model.novelty(rows))):
        timings = []
        for context in (one_blas_thread, nullcontext):
            with context():
                timings.append(per_segment_ms(step, args.repeat, args.segments))
        lines.append(f"| {label} | {timings[0]:.3f} | {timings[1]:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
