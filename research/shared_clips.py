"""GTZAN's clips and Emotify's, with the default's features, for the research scripts (#31).

:func:`gtzan_and_emotify` reads them from the feature cache (filling it on first use) as
``retrain --cross-labels ../shared/data/emotify/labels.csv`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genre_tagger.pipeline.cache import Cache, default_path
from genre_tagger.plugins import registry
from genre_tagger.training.clips import Clip
from genre_tagger.training.dataset import Dataset, drop_duplicate_rows
from genre_tagger.training.retrain import Progress, RetrainOptions, cross_set, extract, find_training_clips

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FEATURES = ("gtzan57", "timbre-rhythm", "musicnn")


def gtzan_and_emotify(jobs: int = 1) -> tuple[list[Clip], Dataset, Dataset]:
    """GTZAN's clips, their features (clean, duplicate rows dropped) and Emotify's (all 200
    clips, electronic too), each over :data:`FEATURES`."""
    options = RetrainOptions(SHARED / "gtzan" / "genres", Path("/nonexistent"), SHARED / "gtzan" / "splits",
                             cross_labels=SHARED / "emotify" / "labels.csv", jobs=jobs)
    progress = Progress(note=print, warn=print)
    extractors = [registry().feature_extractor(n) for n in FEATURES]
    with Cache(default_path()) as cache:
        found = find_training_clips(options, progress)
        gtzan = drop_duplicate_rows(extract(found.clips, extractors, cache, jobs, None, progress))
        emotify = cross_set(options, extractors, cache, {str(g): 1 for g in np.unique(gtzan.y)}, progress).dataset
    return found.clips, gtzan, emotify
