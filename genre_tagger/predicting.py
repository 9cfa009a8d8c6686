"""Predictions for many files with one model, cheapest source first.

Shared by ``scan`` and ``evaluate``:

1. the result cached for (file path, size, mtime; model; segment selection);
2. with ``cache_features``, the features cached for the file by an earlier run (so
   ``evaluate --model all`` decodes each file once per feature extractor);
3. analysis -- decode and extract -- on worker processes or a Dask cluster.

Every prediction made here is cached, so an interrupted run resumes where it stopped.
The model of a bundle is made (:meth:`genre_tagger.bundle.Bundle.load_model`) only when
a file is not answered by the cache, so a fully cached run never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from genre_tagger import cache as cache_module
from genre_tagger.analysis import selection_name
from genre_tagger.plugins import registry
from genre_tagger.voting import majority_vote
from genre_tagger.workers import Analysed, analyse_many

if TYPE_CHECKING:  # only named in annotations
    from genre_tagger.bundle import Bundle
    from genre_tagger.ensemble import Ensemble

UNKNOWN = "unknown"


@dataclass
class FilePrediction:
    """The outcome for one file.

    ``result`` is the cached dict -- ``genre``, ``confidence`` (winning vote share),
    ``top`` (``[(genre, share)]``), ``segments``, ``mean_proba`` (``{class: p}``),
    ``duration_s``, ``stamp`` (size, mtime_ns when analysed) and, for a silent track,
    ``silent: True`` -- or ``None`` with a one-line ``error``. ``key`` is the file's
    cache key before analysis; ``cached`` says the result came from the cache and
    ``analysed`` that the file was decoded for it.
    """

    path: Path
    key: tuple[str, int, int] | None
    result: dict | None
    error: str | None = None
    cached: bool = False
    analysed: bool = False

    @property
    def silent(self) -> bool:
        return bool(self.result and self.result.get("silent"))


def predict(bundle: Bundle | Ensemble, features: dict[str, np.ndarray]) -> dict:
    """The vote of one track: genre, confidence, top 3, segments and mean probabilities.

    ``features`` is ``{extractor name: [n_segments, n_features]}`` for the extractors the
    bundle reads (several for an ensemble).
    """
    proba = bundle.predict_proba(features)
    vote = majority_vote(proba, bundle.classes)
    mean_proba = {str(c): float(p) for c, p in zip(bundle.classes, np.asarray(proba, dtype=float).mean(axis=0))}
    return {"genre": vote.genre, "confidence": vote.confidence, "top": vote.top, "segments": vote.n_segments,
            "mean_proba": mean_proba}


def voted(result: dict, vote: str) -> dict:
    """``result`` decided by ``vote``: ``"majority"`` as cached, or ``"soft"`` -- the class
    of highest mean segment probability, whose confidence is that probability."""
    if vote == "majority" or result.get("silent"):
        return result
    ranked = sorted(result["mean_proba"].items(), key=lambda item: -item[1])  # stable: class order on ties
    return dict(result, genre=ranked[0][0], confidence=ranked[0][1], top=ranked[:3])


def needs_mean_proba(cached: dict) -> bool:
    """A cached result from before ``mean_proba`` was cached (and not silent)."""
    return "mean_proba" not in cached and not cached.get("silent")


def predict_files(
    bundle: Bundle | Ensemble,
    paths: Iterable[Path],
    cache: cache_module.Cache,
    *,
    max_segments: int | None,
    jobs: int = 1,
    cluster: str | None = None,
    cache_features: bool = False,
    refresh: Callable[[dict], bool] = lambda cached: False,
) -> Iterator[FilePrediction]:
    """One :class:`FilePrediction` per path: cached ones first, then analysed ones as they
    complete. ``refresh(cached_result)`` tells when a cached result must be made again.

    Features are cached only with ``cache_features``: a HOG row is ~10 KB per segment,
    too much to keep for a whole library, but cheap for an evaluation set.

    The bundle's model is made before the first file that needs it is predicted; a
    model that cannot be made raises
    :class:`~genre_tagger.bundle.BundleError` from here then, once, rather than failing
    every file.
    """
    settings = selection_name(max_segments)
    model_key = cache_module.model_key(bundle.name, bundle.checksum)
    feature_keys = {
        name: cache_module.features_key(name, registry().feature_extractor(name).version) for name in bundle.extractors
    }
    pending: dict[Path, tuple] = {}
    durations: dict[Path, float] = {}
    for path in paths:
        try:
            key = cache_module.file_key(path)
        except OSError as error:
            yield FilePrediction(path, None, None, f"{path}: {error.strerror or error}")
            continue
        cached = cache.get_result(key, model_key, settings)
        if cached is not None and not refresh(cached):
            yield FilePrediction(path, key, cached, cached=True)
            continue
        if cached and cached.get("duration_s") is not None:
            durations[path] = cached["duration_s"]
        rows = {name: cache.get_features(key, fk, settings) for name, fk in feature_keys.items()} if cache_features else {}
        if rows and all(r is not None for r in rows.values()):
            bundle.load_model()
            yield _predicted(bundle, cache, path, key, key, rows, durations.get(path), model_key, settings)
        else:
            pending[path] = key
    for analysed in analyse_many(list(pending), bundle.extractors, max_segments, jobs, cluster=cluster):
        # made once the first file is analysed: the worker processes start first, so
        # that importing the model's libraries overlaps their start-up
        bundle.load_model()
        prediction = _from_analysis(bundle, cache, analysed, pending[analysed.path], model_key, settings,
                                    feature_keys if cache_features else {})
        prediction.analysed = True
        yield prediction


def _from_analysis(bundle, cache, analysed: Analysed, before: tuple, model_key: str, settings: str,
                   feature_keys: dict[str, str]) -> FilePrediction:
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
        result = {"genre": UNKNOWN, "confidence": 0.0, "top": [], "segments": len(features.segment_index), "silent": True,
                  "duration_s": round(features.duration_s, 2), "stamp": list(key[1:])}
        cache.put_result(key, model_key, settings, result)
        return FilePrediction(path, key, result)
    for name, feature_key in feature_keys.items():
        cache.put_features(key, feature_key, settings, features.features[name])
    return _predicted(bundle, cache, path, before, key, features.features, features.duration_s, model_key, settings)


def _predicted(bundle, cache, path: Path, before: tuple, key: tuple, features: dict[str, np.ndarray],
               duration_s: float | None, model_key: str, settings: str) -> FilePrediction:
    try:
        result = predict(bundle, features)
    except Exception as error:  # a bug or an odd file must not end the whole run
        return FilePrediction(path, before, None, f"{path}: prediction failed: {error}")
    if duration_s is not None:
        result["duration_s"] = round(duration_s, 2)
    result["stamp"] = list(key[1:])
    cache.put_result(key, model_key, settings, result)
    return FilePrediction(path, key, result)
