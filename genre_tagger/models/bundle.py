"""Model bundles on disk: JSON metadata, numpy arrays and text, never a pickle.

A bundle is a folder::

    bundle.json      name, model plugin, feature extractors (names, versions), classes,
                     training-set summary, metrics, library versions, and the SHA-256
                     of every other file
    arrays.npz       the model's numeric state (read with allow_pickle=False)
    <name>.txt       the model's text state (e.g. a LightGBM model)
    assessment.npz   its novelty detector's arrays (:mod:`genre_tagger.models.assessment`);
                     the calibrator and thresholds are in bundle.json

Loading checks every checksum before reading anything, so a truncated bundle is refused,
and nothing in a bundle is ever executed. :func:`load` checks the whole bundle --
metadata, checksums, readable arrays, installed plugins and feature versions -- but makes
the model itself (``ModelSpec.load``: scikit-learn, LightGBM, parsing a booster) only when
it is first used, so a scan answered from the cache, which needs only
:attr:`Bundle.checksum`, never pays for it.

An ensemble's bundle (:mod:`genre_tagger.models.ensemble`) holds only a ``bundle.json``
naming its members; :func:`genre_tagger.models.catalogue.load` opens either kind.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import platform
import re
import unicodedata
import zipfile
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from genre_tagger.hookspecs import GenreModel, ModelState
from genre_tagger.models.assessment import Assessor, Novelty
from genre_tagger.pipeline.files import open_regular
from genre_tagger.plugins import Registry

FORMAT = "genre-tagger-bundle/1"
META_FILE = "bundle.json"
ARRAYS_FILE = "arrays.npz"
ASSESSMENT_FILE = "assessment.npz"
LIBRARIES = ("genre-tagger", "numpy", "scikit-learn", "lightgbm", "librosa", "scikit-image", "av")
#: what a bundle's arrays may take once read: far above any shipped model (the largest, a
#: KNN's training rows, takes about 1 MB), far below what would exhaust a machine
MAX_ARRAY_BYTES = 1 << 30
#: the largest file a bundle may hold (a LightGBM booster is a few MB of text)
MAX_FILE_BYTES = 256 << 20
#: the most members an ensemble may name, checked before any is loaded (the shipped one has 3)
MAX_MEMBERS = 16
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BundleError(Exception):
    """A bundle is missing, damaged, or made for other features than those installed."""


class Bundle:
    """A trained model together with what it was trained on and how well it did: a
    :class:`~genre_tagger.models.predictor.Predictor`.

    Made around a fitted model (``Bundle(name, versions, model)``, as ``retrain`` does),
    or by :func:`load`, which passes a ``loader`` and the ``classes`` from the metadata
    instead: the model is then made on first use (:attr:`model`, :meth:`predict_proba`,
    :meth:`load_model`), and the loader checks it against the metadata. A loader raises
    :class:`BundleError` when the model cannot be made.
    """

    def __init__(
        self,
        name: str,
        feature_extractors: dict[str, str],  # name -> version, in the model's column order
        model: GenreModel | None = None,
        *,
        loader: Callable[[], GenreModel] | None = None,
        classes: list[str] | None = None,
        training: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        path: Path | None = None,
        checksum: str = "",  # SHA-256 of bundle.json: identifies this exact model in caches
        assessor: Assessor | None = None,
        novelty_model: Novelty | None = None,
    ):
        if model is None and (loader is None or classes is None):
            raise TypeError("a Bundle needs a model, or a loader with the classes of its model")
        self.name = name
        self._model = model
        self._loader = loader
        self.feature_extractors = feature_extractors
        self.training = {} if training is None else training
        self.metrics = {} if metrics is None else metrics
        self.path = path
        self.checksum = checksum
        self.assessor = assessor
        self.novelty_model = novelty_model
        self._classes = None if classes is None else np.array(classes)

    def __repr__(self) -> str:
        return f"Bundle({self.name!r}, path={self.path!r}, loaded={self._model is not None})"

    @property
    def model(self) -> GenreModel:
        """The model, made by the loader on first use; raises :class:`BundleError` when it cannot be."""
        self.load_model()
        return self._model

    def load_model(self) -> None:
        """Make the model now (nothing to do once made), so that a bundle whose model cannot
        be made fails once, rather than on every file."""
        if self._model is None:
            self._model = self._loader()

    @property
    def classes(self) -> np.ndarray:
        return self._classes if self._classes is not None else np.asarray(self.model.classes_).astype(str)

    @property
    def extractors(self) -> list[str]:
        """The feature extractors whose rows :meth:`predict_proba` needs."""
        return list(self.feature_extractors)

    def _rows(self, features: dict[str, np.ndarray]) -> np.ndarray:
        return np.hstack([features[name] for name in self.feature_extractors])

    def predict_proba(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """``[n_segments, n_classes]`` from ``{extractor name: [n_segments, n_features]}``."""
        return self.model.predict_proba(self._rows(features))

    def novelty(self, features: dict[str, np.ndarray]) -> list[float] | None:
        """How unlike the training music a track's rows are, per view (``None`` without a detector)."""
        return None if self.novelty_model is None else self.novelty_model.track(self._rows(features))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return versions


def write_metadata(directory: Path, meta: dict[str, Any]) -> str:
    """Write ``bundle.json`` (format and library versions added); returns its checksum."""
    meta = {"format": FORMAT, **meta, "libraries": library_versions()}
    data = json.dumps(meta, indent=2).encode("utf-8")
    (directory / META_FILE).write_bytes(data)
    return sha256(data)


def save(bundle: Bundle, directory: str | Path) -> Path:
    """Write ``bundle`` to ``directory`` (created; files inside are replaced)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state: ModelState = bundle.model.save()
    files: dict[str, bytes] = {}
    for name, array in state.arrays.items():
        if np.asarray(array).dtype == object:
            raise BundleError(f"model {bundle.name!r} returned an object array {name!r}: not storable without pickle")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in state.arrays.items()})
    files[ARRAYS_FILE] = buffer.getvalue()
    if bundle.novelty_model is not None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **bundle.novelty_model.arrays())
        files[ASSESSMENT_FILE] = buffer.getvalue()
    for name, text in state.texts.items():
        files[f"{name}.txt"] = text.encode("utf-8")
    for name, data in files.items():
        (directory / name).write_bytes(data)
    bundle.checksum = write_metadata(directory, {
        "model": bundle.name,
        "feature_extractors": [{"name": name, "version": version} for name, version in bundle.feature_extractors.items()],
        "classes": [str(c) for c in bundle.classes],
        "params": state.params,
        "texts": sorted(state.texts),
        "files": {name: sha256(data) for name, data in files.items()},
        "training": bundle.training,
        "metrics": bundle.metrics,
        "assessment": bundle.assessor.to_json() if bundle.assessor is not None else None,
    })
    bundle.path = directory
    return directory


def is_name(value: object) -> bool:
    """Whether ``value`` is a usable name: text, not blank, without control characters."""
    return isinstance(value, str) and value.strip() != "" and not any(unicodedata.category(c)[0] == "C" for c in value)


def _malformed(meta: dict) -> str | None:
    """What is wrong with the metadata of a bundle, or ``None``."""
    if not is_name(meta.get("model")):
        return "its model name is not a name"
    for key in ("training", "metrics", "params"):
        if not isinstance(meta.get(key, {}), dict):
            return f"{key} is not a mapping"
    classes = meta.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(is_name(c) for c in classes):
        return "its classes are not a list of at least two names"
    if meta.get("kind") == "ensemble":
        return _malformed_ensemble(meta.get("members"), meta.get("weights"))
    files, texts = meta.get("files"), meta.get("texts", [])
    if not isinstance(files, dict) or not all(is_name(k) and isinstance(v, str) and _SHA256.fullmatch(v)
                                              for k, v in files.items()):
        return "files is not a mapping of file names to SHA-256 checksums"
    if not isinstance(texts, list) or not all(is_name(t) and f"{t}.txt" in files for t in texts):
        return "texts does not name text files of the bundle"
    extractors = meta.get("feature_extractors")
    if not isinstance(extractors, list) or not extractors or not all(
            isinstance(e, dict) and is_name(e.get("name")) and is_name(e.get("version")) for e in extractors):
        return "its feature extractors are not a list of names and versions"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _malformed_ensemble(members: object, weights: object) -> str | None:
    """What is wrong with an ensemble's members and weights, or ``None``: checked before any
    member is loaded (that there is one weight per member, once they are found)."""
    if not isinstance(members, list) or not members or not all(is_name(m) for m in members):
        return "an ensemble needs a list of member names"
    if len(members) > MAX_MEMBERS:
        return f"an ensemble has at most {MAX_MEMBERS} members, not {len(members)}"
    if len(set(members)) != len(members):
        return "an ensemble names a member twice"
    if not isinstance(weights, list) or not all(_is_number(w) and w >= 0 for w in weights) or not np.isclose(
            math.fsum(weights), 1):
        return "ensemble weights must be finite non-negative numbers summing to 1"
    return None


def read_metadata(directory: str | Path) -> dict[str, Any]:
    """The parsed ``bundle.json`` of a bundle, checked for format and shape: every
    malformed one is a :class:`BundleError` naming what is wrong."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    try:
        meta = json.loads(read_file(directory, META_FILE))
    except FileNotFoundError:
        raise BundleError(f"{directory}: not a model bundle (no {META_FILE})") from None
    except (OSError, ValueError) as error:
        raise BundleError(f"{meta_path}: unreadable bundle metadata ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path}: not a {FORMAT} bundle")
    problem = _malformed(meta)
    if problem:
        raise BundleError(f"{meta_path}: malformed bundle metadata ({problem})")
    return meta


def read_file(directory: Path, name: str) -> bytes:
    """The bytes of the bundle file ``name``: a regular file inside ``directory`` (after
    symbolic links), of at most :data:`MAX_FILE_BYTES`, read without ever blocking on a
    FIFO. ``OSError`` (``FileNotFoundError`` when missing) or ``ValueError`` saying why not."""
    path = directory / name
    if not path.resolve().is_relative_to(directory.resolve()):
        raise ValueError(f"{name} leads outside the bundle")
    with open_regular(path) as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{name} is larger than {MAX_FILE_BYTES >> 20} MB")
    return data


def read_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``, read without pickle once their headers show they are
    plain arrays within :data:`MAX_ARRAY_BYTES` in all (a small compressed file can
    inflate to any size). Raises ``ValueError`` saying why not."""
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(member)
            if dtype.hasobject:
                raise ValueError(f"{info.filename} holds Python objects, which only pickle could read")
            total += math.prod(shape) * dtype.itemsize
            if total > MAX_ARRAY_BYTES:
                raise ValueError(f"its arrays would take over {MAX_ARRAY_BYTES >> 20} MB once read")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def load(directory: str | Path, registry: Registry) -> Bundle:
    """Load a single model's bundle, refusing it when damaged or made for other features.

    Everything that can be checked without making the model is checked here, so a
    missing, truncated, modified or stale bundle (or one for a plugin that is not
    installed) raises :class:`BundleError` at once: the metadata, every file's checksum,
    the arrays (read with ``allow_pickle=False``) and the feature extractor versions. The
    model itself is made on first use (see :class:`Bundle`); that is also when a plugin
    that cannot load this state, or a model whose classes differ from the metadata's,
    raises :class:`BundleError`.

    The model comes from the installed plugins (by the name recorded in the bundle),
    never from the bundle itself.
    """
    directory = Path(directory)
    meta = read_metadata(directory)
    meta_checksum = sha256(read_file(directory, META_FILE))
    files: dict[str, bytes] = {}
    for name, expected in meta.get("files", {}).items():
        if "/" in name or "\\" in name or name.startswith("."):
            raise BundleError(f"{directory}: bundle names a file outside itself: {name!r}")
        try:
            data = read_file(directory, name)
        except OSError as error:
            raise BundleError(f"{directory / name}: missing or unreadable ({error.strerror or error})") from None
        except ValueError as error:
            raise BundleError(f"{directory / name}: refused ({error})") from None
        if sha256(data) != expected:
            raise BundleError(f"{directory / name}: checksum mismatch, the bundle is damaged or was modified")
        files[name] = data
    try:
        spec = registry.model(meta["model"])
        wanted = {entry["name"]: entry["version"] for entry in meta["feature_extractors"]}
        installed = {name: registry.feature_extractor(name).version for name in wanted}
        classes = [str(c) for c in meta["classes"]]
    except (KeyError, TypeError) as error:
        raise BundleError(f"{directory / META_FILE}: incomplete metadata (no {error})") from None
    except Exception as error:  # PluginError: the plugin is not installed
        raise BundleError(f"{directory}: {error}") from None
    for name, version in wanted.items():
        if installed[name] != version:
            raise BundleError(
                f"{directory}: made for feature extractor {name} version {version}, "
                f"but version {installed[name]} is installed; retrain the model"
            )
    try:
        arrays = read_arrays(files[ARRAYS_FILE])
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, MemoryError) as error:
        raise BundleError(f"{directory / ARRAYS_FILE}: unreadable arrays ({error or type(error).__name__})") from None
    try:
        texts = {name: files[f"{name}.txt"].decode("utf-8") for name in meta.get("texts", [])}
    except UnicodeDecodeError as error:
        raise BundleError(f"{directory}: a text file of the bundle is not UTF-8 ({error.reason})") from None
    state = ModelState(params=meta.get("params", {}), arrays=arrays, texts=texts)
    assessor, novelty_model = _assessment(directory, meta, files)

    def make_model() -> GenreModel:
        # deferred: the plugin's load imports its libraries and parses its state (a
        # LightGBM booster: several MB of text), which a scan from the cache never needs
        try:
            model = spec.load(state)
        except Exception as error:
            raise BundleError(f"{directory}: the {meta['model']} plugin could not load this bundle ({error})") from None
        if [str(c) for c in model.classes_] != classes:
            raise BundleError(f"{directory}: the classes of the model do not match its metadata")
        return model

    return Bundle(str(meta["model"]), wanted, loader=make_model, classes=classes, training=meta.get("training", {}),
                  metrics=meta.get("metrics", {}), path=directory, checksum=meta_checksum, assessor=assessor,
                  novelty_model=novelty_model)


def assessor_of(directory: Path, meta: dict) -> Assessor | None:
    """The bundle's calibrator and thresholds (``None`` for a bundle made without them)."""
    if not meta.get("assessment"):
        return None
    try:
        return Assessor.from_json(meta["assessment"])
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{directory / META_FILE}: malformed assessment ({error})") from None


def _assessment(directory: Path, meta: dict, files: dict[str, bytes]) -> tuple[Assessor | None, Novelty | None]:
    assessor = assessor_of(directory, meta)
    if ASSESSMENT_FILE not in files:
        return assessor, None
    try:
        return assessor, Novelty.from_arrays(read_arrays(files[ASSESSMENT_FILE]))
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, MemoryError) as error:
        raise BundleError(f"{directory / ASSESSMENT_FILE}: unreadable arrays ({error or type(error).__name__})") from None
