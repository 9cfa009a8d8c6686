"""Predictions for many files with one model, cheapest source first.

Shared by ``scan`` and ``evaluate``:

1. the prediction cached for (file path, size, mtime; model; segment selection);
2. with ``cache_features``, the features cached for the file by an earlier run (so
   ``evaluate --model all`` decodes each file once per feature extractor);
3. analysis -- decode and extract -- on worker processes or a Dask cluster.

Every prediction made here is cached, so an interrupted run resumes where it stopped.
The model of a predictor is made (:meth:`~genre_tagger.models.predictor.Predictor.load_model`)
only when a file is not answered by the cache, so a fully cached run never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from genre_tagger.models.predictor import Predictor, TrackPrediction, predict_track
from genre_tagger.pipeline import audio
from genre_tagger.pipeline import cache as cache_module
from genre_tagger.pipeline.analysis import Analysed, one_blas_thread, selection_name
from genre_tagger.pipeline.dispatch import analyse_many
from genre_tagger.pipeline.stopping import never
from genre_tagger.plugins import registry


@dataclass
class FilePrediction:
    """The outcome for one file: its ``prediction``, or ``None`` with a one-line ``error``.

    ``key`` is the file's cache key before analysis; ``cached`` says the prediction came
    from the cache and ``analysed`` that the file was decoded for it.
    """

    path: Path
    key: tuple[str, int, int] | None
    prediction: TrackPrediction | None
    error: str | None = None
    cached: bool = False
    analysed: bool = False


#: feature rows at most this many columns wide are cached by every scan (see predict_files)
NARROW_FEATURES = 512


def predict_files(
    predictor: Predictor,
    paths: Iterable[Path],
    cache: cache_module.Cache,
    *,
    max_segments: int | None,
    jobs: int = 1,
    cluster: str | None = None,
    cache_features: bool = False,
    stop: Callable[[], bool] = never,
) -> Iterator[FilePrediction]:
    """One :class:`FilePrediction` per path: cached ones first, then analysed ones as they
    complete. Once ``stop()`` is true no file is started (those in flight still come):
    the paths not reached get no prediction.

    Features are read from the cache where they are, and cached when at most
    :data:`NARROW_FEATURES` wide (musicnn's embedding and the 57 statistics: ~1 KB a
    segment, so a retrain on a scanned library's own genres decodes nothing); wider ones
    (a HOG row is ~10 KB a segment, too much to keep for a whole library) only with
    ``cache_features``, cheap for an evaluation set.

    The predictor's model is made before the first file that needs it is predicted; a
    model that cannot be made raises :class:`~genre_tagger.models.bundle.BundleError`
    from here then, once, rather than failing every file.
    """
    settings = selection_name(max_segments)
    model_key = cache_module.model_key(predictor.name, predictor.checksum)
    feature_keys = {
        name: cache_module.features_key(name, registry().feature_extractor(name).version) for name in predictor.extractors
    }
    pending: dict[Path, tuple] = {}
    for path in paths:
        if stop():
            return
        try:
            key = cache_module.file_key(path)
        except OSError as error:
            yield FilePrediction(path, None, None, f"{path}: {error.strerror or error}")
            continue
        cached = TrackPrediction.from_json(cache.get_result(key, model_key, settings))
        if cached is not None:
            yield FilePrediction(path, key, cached, cached=True)
            continue
        rows = {name: cache.get_features(key, fk, settings) for name, fk in feature_keys.items()}
        if rows and all(r is not None for r in rows.values()):
            predictor.load_model()
            yield _predicted(predictor, cache, path, key, rows, None, model_key, settings)
        else:
            pending[path] = key
    for analysed in analyse_many(list(pending), predictor.extractors, max_segments, jobs, cluster=cluster, stop=stop):
        # made once the first file is analysed, while the workers go on with the next ones
        # (made on a thread during their start-up instead, one scan in ~35 exited silently)
        predictor.load_model()
        prediction = _from_analysis(predictor, cache, analysed, pending[analysed.path], model_key, settings,
                                    feature_keys, cache_features)
        prediction.analysed = True
        yield prediction


def _from_analysis(predictor: Predictor, cache, analysed: Analysed, before: tuple, model_key: str, settings: str,
                   feature_keys: dict[str, str], cache_wide: bool) -> FilePrediction:
    path = analysed.path
    if analysed.error:
        return FilePrediction(path, before, None, analysed.error)
    try:
        key = cache_module.file_key(path)
    except OSError as error:
        return FilePrediction(path, before, None, f"{path}: {error.strerror or error} (deleted or moved while it was analysed)")
    if key != before:  # the features describe (some of) the old content: neither cache nor use them
        return FilePrediction(path, before, None, f"{path}: file changed while it was being analysed; scan it again")
    features = analysed.features
    if features.silent:
        prediction = TrackPrediction(len(features.segment_index), duration_s=round(features.duration_s, 2),
                                     stamp=key[1:], silent=True)
        cache.put_result(key, model_key, settings, prediction.to_json())
        return FilePrediction(path, key, prediction)
    for name, feature_key in feature_keys.items():
        if cache_wide or features.features[name].shape[1] <= NARROW_FEATURES:
            cache.put_features(key, feature_key, settings, features.features[name])
    return _predicted(predictor, cache, path, key, features.features, features.duration_s, model_key, settings)


def _predicted(predictor: Predictor, cache, path: Path, key: tuple, features: dict[str, np.ndarray],
               duration_s: float | None, model_key: str, settings: str) -> FilePrediction:
    try:
        with one_blas_thread():  # small products too, which BLAS threads only slow on a busy machine
            prediction = predict_track(predictor, features)
    except Exception as error:  # a bug or an odd file must not end the whole run
        return FilePrediction(path, key, None, f"{path}: prediction failed: {error}")
    if duration_s is None:  # predicted from cached features: the header says how long the file is
        try:
            duration_s = audio.probe(path).duration_s
        except audio.AudioError:
            pass
    prediction.duration_s = None if duration_s is None else round(duration_s, 2)
    prediction.stamp = key[1:]
    cache.put_result(key, model_key, settings, prediction.to_json())
    return FilePrediction(path, key, prediction)
