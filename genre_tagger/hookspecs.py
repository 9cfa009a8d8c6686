"""The plugin contract: what a feature plugin and a model plugin must provide.

genre-tagger is extended with pluggy. A plugin is an ordinary Python module that
implements one or both of the hooks below, decorated with :data:`hookimpl`, and is
registered under the ``genre_tagger`` entry-point group of its package::

    [project.entry-points.genre_tagger]
    my_features = "my_package.my_features"

The built-in plugins in ``plugins/`` are registered exactly this way; the core never
imports a plugin by name.

Data flows one way: decoded audio (:data:`genre_tagger.segments.SAMPLE_RATE` Hz mono
float32) is cut by the core into segments of :data:`genre_tagger.segments.SEGMENT_SAMPLES`
samples; a *feature extractor* turns segments into one feature row each; a *model* turns
feature rows into class probabilities; the core votes per track.

The plugin API is this module and :mod:`genre_tagger.segments`,
:mod:`genre_tagger.spectrum` and :mod:`genre_tagger.selection` (their ``__all__``); a
plugin needs nothing else of the core.

Feature extractor
    An object with

    - ``name: str`` -- unique, stable, used in model bundles and caches;
    - ``version: str`` -- bumped whenever the numbers it produces change, so caches and
      model bundles made with an older version are refused instead of silently reused;
    - ``feature_names: list[str]`` -- one name per column;
    - ``extract(segments: Segments) -> ndarray[n_segments, n_features] float64`` -- pure:
      the same input always gives the same output, and each row depends on its own
      segment only. The core passes a :class:`genre_tagger.spectrum.Segments`: the
      samples (``.samples``, float32 ``[n_segments, n_samples]``) and their STFT,
      magnitude, power and log-mel spectrogram (librosa's defaults), computed once per
      batch and shared by every extractor that reads them. No segments give zero rows of
      the extractor's width.

    and optionally

    - ``outside_genre_layer(classes: list[str]) -> (kernel [n_features, n_tags], bias
      [n_tags]) | None`` -- where the extractor's network knows genres by name (tags), the
      logistic layer from its columns to the probabilities of those tags that name a genre
      outside ``classes``: ``retrain`` refuses music outside a model's genres by that
      evidence instead of by how far its columns lie from the training music's
      (:class:`genre_tagger.models.assessment.OutsideLayer`).

Model
    A plugin offers models as :class:`ModelSpec` values: a name, the feature extractors
    whose columns it reads, and the estimator that learns it, named by import path so
    that listing the plugins (and a scan answered from the cache) imports no
    machine-learning library. The estimator is a scikit-learn classifier
    (``sklearn.base.BaseEstimator`` and ``ClassifierMixin``: parameters in
    ``__init__``, all with defaults, stored as given; ``get_params`` / ``set_params`` and
    ``sklearn.base.clone`` work) with

    - ``fit(X, y, groups=None) -> self`` -- ``X`` is ``[n_segments, n_features]``, ``y``
      the genre of each row (str), ``groups`` the clip each row comes from, so any
      internal model selection keeps the segments of one clip together
      (:func:`genre_tagger.selection.grouped_folds`);
    - ``classes_: ndarray[n_classes] of str`` -- set by ``fit``;
    - ``predict_proba(X) -> ndarray[n_segments, n_classes]`` -- rows sum to 1, columns
      in the order of ``classes_``;
    - ``save() -> ModelState`` and ``classmethod load(state: ModelState) -> estimator`` --
      the fitted state as JSON-able parameters, numpy arrays and text. The core writes
      and reads the files (see :mod:`genre_tagger.models.bundle`), so no plugin ever
      writes a pickle and loading a bundle never executes code from it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

import numpy as np
import pluggy

if TYPE_CHECKING:
    from genre_tagger.spectrum import Segments

__all__ = [
    "FeatureExtractor", "GenreModel", "ModelSpec", "ModelState", "PROJECT", "hookimpl", "hookspec",
    "genre_tagger_feature_extractors", "genre_tagger_models",
]

PROJECT = "genre_tagger"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass
class ModelState:
    """Everything a trained model needs to predict again, in pickle-free pieces.

    ``params`` must be JSON-serialisable, ``arrays`` plain numeric/bool/str numpy arrays
    (never ``dtype=object``), ``texts`` plain strings (e.g. a LightGBM text model).
    """

    params: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class FeatureExtractor(Protocol):
    name: str
    version: str
    feature_names: list[str]

    def extract(self, segments: "Segments") -> np.ndarray: ...


@runtime_checkable
class GenreModel(Protocol):
    """A fitted or unfitted estimator of a :class:`ModelSpec` (see the module docstring)."""

    classes_: np.ndarray

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "GenreModel": ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def save(self) -> ModelState: ...

    @classmethod
    def load(cls, state: ModelState) -> "GenreModel": ...


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin offers.

    ``name`` is unique and stable (bundles and caches record it); ``feature_extractors``
    names the extractors whose columns ``X`` holds side by side, in this order;
    ``estimator`` is the estimator class as ``"package.module:Class"``, imported on first
    use; ``params`` are the constructor parameters that make this model of it (one
    estimator may serve several models); ``version`` is bumped when the estimator's
    saved state changes meaning. ``retrain_by_default`` is whether a ``genre-tagger
    retrain`` that names no models (``--models``) trains this one; ``False`` for a model
    too slow or too large to train on every retrain (e.g. a forest of deep trees): it is
    trained only when named.
    """

    name: str
    feature_extractors: tuple[str, ...]
    estimator: str
    params: Mapping[str, Any] = field(default_factory=dict)
    version: str = "1"
    description: str = ""
    retrain_by_default: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_extractors", tuple(self.feature_extractors))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def estimator_class(self) -> type[GenreModel]:
        """The estimator class, imported now."""
        module, _, attribute = self.estimator.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def make(self, **params: Any) -> GenreModel:
        """An unfitted estimator of this model; ``params`` override the spec's own."""
        return self.estimator_class()(**{**self.params, **params})

    def load(self, state: ModelState) -> GenreModel:
        """The fitted estimator whose :meth:`GenreModel.save` returned ``state``."""
        return self.estimator_class().load(state)


@hookspec
def genre_tagger_feature_extractors() -> list[FeatureExtractor]:
    """Return the feature extractor instances this plugin provides."""


@hookspec
def genre_tagger_models() -> list[ModelSpec]:
    """Return the models this plugin provides."""
