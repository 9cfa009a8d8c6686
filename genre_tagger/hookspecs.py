"""The plugin contract: what a feature plugin and a model plugin must provide.

genre-tagger is extended with pluggy. A plugin is an ordinary Python module that
implements one or both of the hooks below, decorated with :data:`hookimpl`, and is
registered under the ``genre_tagger`` entry-point group of its package::

    [project.entry-points.genre_tagger]
    my_features = "my_package.my_features"

The built-in plugins in ``plugins/`` are registered exactly this way; the core never
imports a plugin by name.

Data flows one way: decoded audio (22050 Hz mono float32) is cut by the core into
segments of :data:`genre_tagger.segments.SEGMENT_SAMPLES` samples; a *feature
extractor* turns segments into one feature row each; a *model* turns feature rows into
class probabilities; the core votes per track.

Feature extractor
    An object with

    - ``name: str`` -- unique, stable, used in model bundles and caches;
    - ``version: str`` -- bumped whenever the numbers it produces change, so caches and
      model bundles made with an older version are refused instead of silently reused;
    - ``feature_names: list[str]`` -- one name per column;
    - ``extract(segments: Segments | ndarray[n_segments, n_samples] float32) ->
      ndarray[n_segments, n_features] float64`` -- pure: the same input always gives
      the same output, and each row depends on its own segment only. The core passes a
      :class:`genre_tagger.spectrum.Segments`: the samples (``.samples``) and their
      STFT, magnitude, power and log-mel spectrogram (librosa's defaults), computed
      once per batch and shared by every extractor that reads them. :func:`genre_tagger.spectrum.batches`
      accepts either form and bounds memory.

Model
    A class with

    - ``name: str`` (class attribute) -- unique, stable;
    - ``feature_extractors: tuple[str, ...]`` (class attribute) -- the ``name`` of each
      feature extractor whose rows it consumes; its ``X`` holds their columns side by
      side, in this order;
    - ``__init__(**params)`` -- hyper-parameters only, all with defaults;
    - ``fit(X, y, groups=None) -> self`` -- ``X`` is ``[n_segments, n_features]``,
      ``y`` the genre of each row (str), ``groups`` the clip each row comes from, so any
      internal model selection can keep the segments of one clip together;
    - ``classes_: ndarray[n_classes] of str`` -- set by ``fit``;
    - ``predict_proba(X) -> ndarray[n_segments, n_classes]`` -- rows sum to 1, columns
      in the order of ``classes_``;
    - ``save() -> ModelState`` and ``classmethod load(state: ModelState) -> model`` --
      the model's whole learned state as JSON-able parameters, numpy arrays and text.
      The core writes and reads the files (see :mod:`genre_tagger.bundle`), so no
      plugin ever writes a pickle and loading a bundle never executes code from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pluggy

if TYPE_CHECKING:
    from genre_tagger.spectrum import Segments

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

    def extract(self, segments: "Segments | np.ndarray") -> np.ndarray: ...


@runtime_checkable
class GenreModel(Protocol):
    name: ClassVar[str]
    feature_extractors: ClassVar[tuple[str, ...]]
    classes_: np.ndarray

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "GenreModel": ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def save(self) -> ModelState: ...

    @classmethod
    def load(cls, state: ModelState) -> "GenreModel": ...


@hookspec
def genre_tagger_feature_extractors() -> list[FeatureExtractor]:
    """Return the feature extractor instances this plugin provides."""


@hookspec
def genre_tagger_models() -> list[type[GenreModel]]:
    """Return the model classes this plugin provides."""
