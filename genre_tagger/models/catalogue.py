"""The trained models of a models folder, and which of them ``scan`` uses by default.

A models folder (the shipped ``pretrained/``, or one ``retrain`` wrote) holds one bundle
folder per model. :func:`load` opens either kind of bundle -- a single model's
(:mod:`~genre_tagger.models.bundle`) or an ensemble's
(:mod:`~genre_tagger.models.ensemble`), whose members are the folders beside it -- and
:func:`choose` resolves what a user asked for (a name, ``all``, or nothing: the default).

The default model is chosen from the scores ``retrain`` recorded in each bundle
(:func:`selection_score`, :func:`choose_default`).
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from genre_tagger.models import bundle as bundle_module
from genre_tagger.models import ensemble as ensemble_module
from genre_tagger.models.bundle import META_FILE, BundleError, read_metadata
from genre_tagger.models.predictor import Predictor
from genre_tagger.plugins import PluginError, Registry

ALL = "all"  # choose(): every model of the folder

log = logging.getLogger(__name__)

#: Selection scores closer than this are a tie: one 5-fold CV over ~500 clips cannot
#: separate them (their spread across folds is several points).
SCORE_TIE = 0.01


def default_models_dir() -> Path:
    """Where models are looked up: ``$GENRE_TAGGER_MODELS``, else the shipped ``pretrained/``."""
    if os.environ.get("GENRE_TAGGER_MODELS"):
        return Path(os.environ["GENRE_TAGGER_MODELS"])
    return Path(str(resources.files("genre_tagger_pretrained")))


def available(models_dir: str | Path) -> list[str]:
    """Names of the bundles in ``models_dir`` (sub-folders holding a bundle.json)."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    return sorted(p.parent.name for p in models_dir.glob(f"*/{META_FILE}"))


def load(directory: str | Path, registry: Registry) -> Predictor:
    """The bundle in ``directory``: a :class:`~genre_tagger.models.bundle.Bundle`, or an
    :class:`~genre_tagger.models.ensemble.Ensemble` of the member bundles beside it, each
    checked as :func:`genre_tagger.models.bundle.load` checks a bundle. Raises
    :class:`~genre_tagger.models.bundle.BundleError`."""
    directory = Path(directory)
    meta = read_metadata(directory)
    if meta.get("kind") != ensemble_module.KIND:
        return bundle_module.load(directory, registry)
    members = [bundle_module.load(_member_folder(directory, name), registry) for name in meta["members"]]
    return ensemble_module.assemble(directory, meta, members)


def _member_folder(ensemble: Path, name: str) -> Path:
    """The bundle folder of an ensemble's member ``name``: a folder beside the ensemble's,
    in the same models folder, that is not an ensemble itself (so an ensemble is one level
    deep, and no ensemble can reach itself)."""
    models_dir = ensemble.parent.resolve()
    folder = ensemble.parent / name
    if name in (".", "..") or "/" in name or "\\" in name or folder.resolve().parent != models_dir:
        raise BundleError(f"{ensemble}: member {name!r} is not a bundle folder of {ensemble.parent}")
    if folder.resolve() == ensemble.resolve():
        raise BundleError(f"{ensemble}: the ensemble names itself as a member")
    if read_metadata(folder).get("kind") == ensemble_module.KIND:
        raise BundleError(f"{ensemble}: member {name} is an ensemble itself")
    return folder


def choose(model_name: str | None, models_dir: str | Path | None, registry: Registry) -> list[Predictor]:
    """The models a user asked for in ``models_dir`` (default :func:`default_models_dir`):
    the one named, every one for :data:`ALL`, or the default one for ``None``. Raises
    :class:`~genre_tagger.models.bundle.BundleError` saying what is there when the name is
    not, or when a bundle cannot be used."""
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    names = available(models_dir)
    if not names:
        raise BundleError(f"{models_dir}: no trained models found (run 'genre-tagger retrain' or pass --models-dir)")
    if model_name == ALL:
        chosen = names
    elif model_name is None:
        chosen = [best_model(models_dir)]
    elif model_name in names:
        chosen = [model_name]
    else:
        raise BundleError(f"no model {model_name!r} in {models_dir} (available: {', '.join(names)})")
    try:
        return [load(models_dir / name, registry) for name in chosen]
    except PluginError as error:
        raise BundleError(str(error)) from None


def selection_score(metrics: dict) -> float:
    """What the default model is chosen by: the grouped-CV track balanced accuracy averaged
    with the same CV's scores on degraded test folds (``metrics["robustness"]``, where
    there are any), as a library of mp3s and old 16-kHz rips counts as much as clean clips;
    and that averaged with the track balanced accuracy on other music by models that never
    saw its source (``metrics["unseen_source"]``, where it was measured), which counts as
    much again: a user's library is not GTZAN, nor any source a model trained on."""
    headline = metrics.get("grouped_cv", {}).get("track_balanced_accuracy", 0.0)
    degraded = [scores["track_balanced_accuracy"] for scores in metrics.get("robustness", {}).values()]
    training_folder = float(np.mean([headline, *degraded]))
    cross = metrics.get("unseen_source", {}).get("track_balanced_accuracy")
    return training_folder if cross is None else float(np.mean([training_folder, cross]))


def choose_default(scores: dict[str, float], extractors: dict[str, set[str]]) -> str:
    """The default model among ``scores`` (per model, its :func:`selection_score`):
    of the models within :data:`SCORE_TIE` of the best, the one that needs the fewest
    feature extractors (``extractors``: per model, the set it reads), i.e. the fastest
    scan; then the best score."""
    top = max(scores.values())
    tied = [name for name, score in scores.items() if score >= top - SCORE_TIE]
    return min(tied, key=lambda name: (len(extractors[name]), -scores[name], name))


def _extractor_names(folder: Path, meta: dict[str, Any]) -> set[str]:
    """The feature extractors the bundle in ``folder`` (its metadata ``meta``) reads; an
    ensemble's: its members'."""
    if meta.get("kind") != ensemble_module.KIND:
        return {entry["name"] for entry in meta["feature_extractors"]}
    return {entry["name"] for member in meta["members"]
            for entry in read_metadata(_member_folder(folder, member))["feature_extractors"]}


def _candidate_score(folder: Path, meta: dict[str, Any]) -> float:
    """The :func:`selection_score` of the bundle in ``folder``; :class:`BundleError` where
    its metrics hold none from 0 to 1 (a score missing, not a number, or NaN)."""
    try:
        score = selection_score(meta.get("metrics", {}))
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{folder / META_FILE}: its metrics hold no score to choose the default model by "
                          f"({type(error).__name__}: {error})") from None
    if not 0 <= score <= 1:
        raise BundleError(f"{folder / META_FILE}: its metrics give a selection score of {score}, not one from 0 to 1")
    return score


def best_model(models_dir: str | Path) -> str:
    """The default bundle in ``models_dir``, by :func:`choose_default`. A damaged bundle is
    never the default while another one can be read, and a warning names it and says why:
    a scan does not switch models silently."""
    models_dir = Path(models_dir)
    scores, extractors = {}, {}
    for name in available(models_dir):
        try:
            meta = read_metadata(models_dir / name)
            extractors[name] = _extractor_names(models_dir / name, meta)
            scores[name] = _candidate_score(models_dir / name, meta)
        except BundleError as error:
            log.warning("%s; not a candidate for the default model", error)
            scores[name], extractors[name] = -1.0, set()
    return choose_default(scores, extractors)
