"""Model plugins and pickle-free bundles, on synthetic features (no audio needed)."""

import json

import numpy as np
import pytest

from genre_tagger.models import bundle
from genre_tagger.plugins import registry


def synthetic(n_clips_per_class=(12, 12, 4), segments=5, n_features=57, seed=0):
    """Clips of three imbalanced classes whose segments scatter around a class centre."""
    rng = np.random.default_rng(seed)
    X, y, groups = [], [], []
    for label, n_clips in zip(["blues", "jazz", "pop"], n_clips_per_class):
        centre = rng.normal(0, 3, n_features)
        for clip in range(n_clips):
            clip_centre = centre + rng.normal(0, 1, n_features)
            X.append(clip_centre + rng.normal(0, 0.5, (segments, n_features)))
            y += [label] * segments
            groups += [f"{label}.{clip:05d}"] * segments
    return np.vstack(X), np.array(y), np.array(groups)


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.mark.parametrize("name", ["knn", "lightgbm", "lightgbm-plus", "logreg", "musicnn-logreg"])
def test_model_fits_predicts_and_round_trips_without_pickle(name, data, tmp_path):
    X, y, groups = data
    plugins = registry()
    spec = plugins.model(name)
    params = {"n_estimators": 50} if name.startswith("lightgbm") else {}
    model = spec.make(**params).fit(X, y, groups)
    assert list(model.classes_) == ["blues", "jazz", "pop"]
    proba = model.predict_proba(X[:7])
    assert proba.shape == (7, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert (model.classes_[proba.argmax(1)] == y[:7]).mean() > 0.8

    versions = {name: plugins.feature_extractor(name).version for name in spec.feature_extractors}
    saved = bundle.Bundle(name, versions, model, training={"n_clips": 28}, metrics={"x": 1})
    bundle.save(saved, tmp_path / name)
    assert not list((tmp_path / name).glob("*.pkl"))
    loaded = bundle.load(tmp_path / name, plugins)
    np.testing.assert_allclose(loaded.model.predict_proba(X[:7]), proba, rtol=1e-6, atol=1e-6)
    assert loaded.training == {"n_clips": 28} and loaded.checksum


def test_knn_balances_classes_and_chooses_k(data):
    X, y, groups = data
    model = registry().model("knn").make().fit(X, y, groups)
    assert model.n_neighbors_ in (1, 3, 5, 9, 15, 25)
    assert model.scores_  # chosen by grouped CV
    # the rare class gets the larger vote weight
    weights = dict(zip(model.classes_, model.class_weight_))
    assert weights["pop"] > weights["blues"]


@pytest.fixture
def saved_knn(data, tmp_path):
    X, y, groups = data
    plugins = registry()
    model = plugins.model("knn").make(n_neighbors=(3,), weights=("uniform",)).fit(X, y, groups)
    return bundle.save(bundle.Bundle("knn", {"gtzan57": plugins.feature_extractor("gtzan57").version}, model),
                       tmp_path / "knn")


def test_tampered_bundle_is_refused(saved_knn):
    arrays = saved_knn / "arrays.npz"
    data = bytearray(arrays.read_bytes())
    data[len(data) // 2] ^= 0xFF
    arrays.write_bytes(bytes(data))
    with pytest.raises(bundle.BundleError, match="checksum mismatch"):
        bundle.load(saved_knn, registry())


def test_truncated_bundle_is_refused(saved_knn):
    arrays = saved_knn / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:100])
    with pytest.raises(bundle.BundleError):
        bundle.load(saved_knn, registry())


def test_bundle_for_other_feature_version_is_refused(saved_knn):
    meta_path = saved_knn / "bundle.json"
    meta = json.loads(meta_path.read_text())
    meta["feature_extractors"][0]["version"] = "0-old"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError, match="version 0-old"):
        bundle.load(saved_knn, registry())


def test_bundle_naming_files_outside_is_refused(saved_knn):
    meta_path = saved_knn / "bundle.json"
    meta = json.loads(meta_path.read_text())
    meta["files"]["../../etc/passwd"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError, match="outside"):
        bundle.load(saved_knn, registry())


def test_pickle_inside_arrays_is_never_loaded(saved_knn):
    """An npz with an object array (which needs pickle) is refused, not executed."""
    import hashlib
    import io

    buffer = io.BytesIO()
    np.savez(buffer, classes=np.array([object()], dtype=object))
    (saved_knn / "arrays.npz").write_bytes(buffer.getvalue())
    meta_path = saved_knn / "bundle.json"
    meta = json.loads(meta_path.read_text())
    meta["files"]["arrays.npz"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError):
        bundle.load(saved_knn, registry())


@pytest.mark.parametrize("name", ["knn", "lightgbm", "logreg", "hog-logreg"])
def test_model_plugins_are_scikit_learn_estimators(name):
    from sklearn.base import clone

    model = registry().model(name).make()
    twin = clone(model)
    assert twin is not model and twin.get_params() == model.get_params()
    if "class_weight" in model.get_params():
        assert clone(model).set_params(class_weight=None).get_params()["class_weight"] is None
        assert model.get_params()["class_weight"] == "balanced"
