"""The decision-tree, bagged-trees and random-forest model plugins (#33): registered through
entry points, left out of a plain retrain, pickle-free bundles that predict exactly as
scikit-learn did, and crafted tree arrays refused in one line."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from genre_tagger.models import bundle, catalogue
from genre_tagger.models.bundle import BundleError
from genre_tagger.plugins import registry
from genre_tagger.training import retrain as retrain_module
from genre_tagger_plugins.estimators import trees

TREE_MODELS = ("decision-tree", "bagged-trees", "random-forest")
SMALL = {"decision-tree": {}, "bagged-trees": {"n_estimators": 12}, "random-forest": {"n_estimators": 20}}
GENRES = np.array(["blues", "classical", "jazz", "rock"])


def synthetic(n: int = 400, n_features: int = 57, seed: int = 0):
    """Rows of four genres that a few columns separate, noisily; 10 rows a clip."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    code = (X[:, 0] + 0.2 * rng.normal(size=n) > 0).astype(int) + 2 * (X[:, 3] + 0.2 * rng.normal(size=n) > 0)
    return X, GENRES[code], np.repeat(np.arange(n // 10), 10)


@pytest.fixture(scope="module")
def fitted():
    X, y, groups = synthetic()
    return {name: registry().model(name).make(**SMALL[name]).fit(X, y, groups) for name in TREE_MODELS}


def test_the_tree_plugins_come_from_entry_points_and_read_gtzan57():
    plugins = registry()
    sources = {row.name: row.source for row in plugins.describe()}
    for name in TREE_MODELS:
        assert plugins.model(name).feature_extractors == ("gtzan57",)
        assert "genre-tagger" in sources[name] and "genre_tagger_plugins.trees" in sources[name]


def test_no_tree_model_is_trained_by_a_plain_retrain(tmp_path, monkeypatch):
    """``retrain`` without ``--models`` asks the registry for every model but the three."""
    plugins = registry()
    assert not set(TREE_MODELS) & set(plugins.default_models())
    assert {"knn", "lightgbm", "logreg"} <= set(plugins.default_models())
    asked = []
    monkeypatch.setattr(plugins, "model", lambda name: asked.append(name) or plugins.models[name])

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(retrain_module, "find_training_clips", stop)
    with pytest.raises(Stop):
        retrain_module.retrain(retrain_module.RetrainOptions(tmp_path, tmp_path / "out"), plugins, cache=None)
    assert asked == plugins.default_models()
    asked.clear()
    with pytest.raises(Stop):
        retrain_module.retrain(retrain_module.RetrainOptions(tmp_path, tmp_path / "out", models=["random-forest"]),
                               plugins, cache=None)
    assert asked == ["random-forest"]


@pytest.mark.parametrize("name", TREE_MODELS)
def test_fit_predicts_probabilities_in_the_order_of_classes(name, fitted):
    model = fitted[name]
    X, y, _ = synthetic(200, seed=1)
    proba = model.predict_proba(X)
    assert model.classes_.tolist() == GENRES.tolist() and proba.shape == (200, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert (model.classes_[proba.argmax(axis=1)] == y).mean() > 0.6
    np.testing.assert_array_equal(proba, model.estimator_.predict_proba(X))
    with pytest.raises(ValueError, match="features"):
        model.predict_proba(X[:, :10])


@pytest.mark.parametrize("name", TREE_MODELS)
def test_a_saved_bundle_loads_and_predicts_exactly_as_scikit_learn(name, fitted, tmp_path):
    model = fitted[name]
    folder = bundle.save(bundle.Bundle(name, {"gtzan57": registry().feature_extractor("gtzan57").version}, model),
                         tmp_path / name)
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "bundle.json"]
    loaded = catalogue.load(folder, registry()).model
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    X, _, _ = synthetic(300, seed=2)
    X = X * 3
    X[::7, 0] = np.nan  # a missing value goes where scikit-learn sends it
    np.testing.assert_array_equal(loaded.predict_proba(X), model.estimator_.predict_proba(X))


def test_bagged_trees_keep_each_trees_own_columns():
    """A bagged tree that saw a subset of the columns, in its own order, reads them from the model's rows."""
    from sklearn.ensemble import BaggingClassifier
    from sklearn.tree import DecisionTreeClassifier

    X, y, _ = synthetic(300, n_features=8, seed=3)
    codes = np.searchsorted(GENRES, y)
    bagging = BaggingClassifier(DecisionTreeClassifier(), n_estimators=10, max_features=0.5, bootstrap_features=True,
                                random_state=0).fit(X, codes)
    assert any(not np.array_equal(f, np.arange(8)) for f in bagging.estimators_features_)
    arrays = trees.arrays_of([(tree, tree.classes_.astype(int), f) for tree, f in
                              zip(bagging.estimators_, bagging.estimators_features_)], len(GENRES))
    checked, depth = trees.check_trees(arrays.as_dict(), len(GENRES), 8)
    rows = synthetic(100, n_features=8, seed=4)[0] * 2
    np.testing.assert_array_equal(trees.TreePredictor(checked, depth).predict_proba(rows), bagging.predict_proba(rows))


# --------------------------------------------------------------------------- crafted bundles


@pytest.fixture(scope="module")
def forest_folder(fitted, tmp_path_factory):
    model = fitted["random-forest"]
    version = registry().feature_extractor("gtzan57").version
    return bundle.save(bundle.Bundle("random-forest", {"gtzan57": version}, model),
                       tmp_path_factory.mktemp("forest") / "random-forest")


def _copy(folder, tmp_path):
    import shutil
    return shutil.copytree(folder, tmp_path / folder.name)


def _replace_arrays(folder, change) -> None:
    """``change`` the bundle's arrays (a dict) and write them back with their checksum, as bundle.py does."""
    arrays = bundle.read_arrays((folder / bundle.ARRAYS_FILE).read_bytes())
    change(arrays)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    (folder / bundle.ARRAYS_FILE).write_bytes(data)
    meta = json.loads((folder / bundle.META_FILE).read_text())
    meta["files"][bundle.ARRAYS_FILE] = bundle.sha256(data)
    (folder / bundle.META_FILE).write_text(json.dumps(meta))


def _first_split(arrays) -> int:
    return int(np.argmax(arrays["children_left"] >= 0))


def _set(name, value, where=_first_split):
    def change(arrays):
        arrays[name] = arrays[name].copy()
        arrays[name][where(arrays)] = value
    return change


CRAFTED = {
    "a child index beyond its tree": (_set("children_left", 10**6), "children_left outside"),
    "a negative child index": (_set("children_right", -5), "children_right outside"),
    "a child pointing back at its parent (a cycle)": (_set("children_left", 0), "children_left outside"),
    "a node with one child": (_set("children_right", -1), "one child"),
    "a node reached twice": (lambda a: a.update(children_right=np.where(
        np.arange(len(a["children_right"])) == _first_split(a), a["children_left"], a["children_right"])),
        "do not make one tree"),
    "a feature beyond the 57": (_set("feature", 57), "feature beyond its 57"),
    "a negative feature": (_set("feature", -3), "feature beyond its 57"),
    "a NaN threshold": (_set("threshold", np.nan), "threshold that is not a finite number"),
    "an infinite threshold": (_set("threshold", np.inf), "threshold that is not a finite number"),
    "a NaN leaf probability": (_set("value", np.nan, lambda a: int(np.argmax(a["children_left"] < 0))),
                               "class probabilities"),
    "leaf probabilities not summing to 1": (_set("value", 5.0, lambda a: int(np.argmax(a["children_left"] < 0))),
                                            "class probabilities"),
    "value for other classes": (lambda a: a.update(value=a["value"][:, :3]), "for 4 classes"),
    "arrays of different lengths": (lambda a: a.update(threshold=a["threshold"][:-1]), "threshold has shape"),
    "a 2-d feature array": (lambda a: a.update(feature=a["feature"][:, None]), "feature has shape"),
    "offsets past the nodes": (lambda a: a.update(tree_offsets=a["tree_offsets"] + 1), "tree_offsets"),
    "offsets not increasing": (_set("tree_offsets", 0, lambda a: 1), "tree_offsets"),
    "absurdly many trees": (lambda a: a.update(tree_offsets=np.arange(trees.MAX_TREES + 2)), "tree_offsets"),
    "a missing array": (lambda a: a.pop("threshold"), "no threshold array"),
    "thresholds as text": (lambda a: a.update(threshold=a["threshold"].astype(str)), "threshold holds"),
    "float child indices": (lambda a: a.update(children_left=a["children_left"].astype(float)), "children_left holds"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_tree_arrays_are_refused_in_one_line(case, forest_folder, tmp_path):
    change, words = CRAFTED[case]
    folder = _copy(forest_folder, tmp_path)
    _replace_arrays(folder, change)
    loaded = catalogue.load(folder, registry())  # the arrays are checked when the model is made
    with pytest.raises(BundleError) as refused:
        loaded.load_model()
    message = str(refused.value)
    assert "\n" not in message and str(folder) in message and "arrays.npz" in message, message
    assert words in message, message


def test_a_tree_deeper_than_the_bound_is_refused(forest_folder, monkeypatch):
    monkeypatch.setattr(trees, "MAX_DEPTH", 3)
    with pytest.raises(BundleError, match="deeper than 3 levels"):
        catalogue.load(forest_folder, registry()).load_model()


@pytest.mark.parametrize("n_features", [0, -1, "57", 10**9, True])
def test_an_absurd_number_of_features_is_refused(n_features, forest_folder, tmp_path):
    folder = _copy(forest_folder, tmp_path)
    meta = json.loads((folder / bundle.META_FILE).read_text())
    meta["params"]["n_features"] = n_features
    (folder / bundle.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="n_features") as refused:
        catalogue.load(folder, registry()).load_model()
    assert "\n" not in str(refused.value)


def test_a_chain_of_nodes_is_walked_to_its_leaf():
    """A valid tree of depth 60 (a chain): the walk takes as many steps as the tree is deep."""
    depth = 60
    n = 2 * depth + 1
    left = np.full(n, -1, np.int32)
    right = np.full(n, -1, np.int32)
    left[0:2 * depth:2] = np.arange(1, 2 * depth, 2)  # the left child of each split is a leaf
    right[0:2 * depth:2] = np.arange(2, 2 * depth + 1, 2)
    feature = np.where(left >= 0, 0, -2).astype(np.int32)
    threshold = np.where(left >= 0, np.arange(n, dtype=float), -2.0)
    value = np.zeros((n, 2))
    value[left < 0, 1] = 1
    value[2 * depth] = [1, 0]
    arrays = {"tree_offsets": np.array([0, n]), "children_left": left, "children_right": right, "feature": feature,
              "threshold": threshold, "missing_go_to_left": np.zeros(n, bool), "value": value}
    checked, found = trees.check_trees(arrays, 2, 1)
    assert found == depth
    proba = trees.TreePredictor(checked, found).predict_proba(np.array([[-1.0], [1e9]]))
    np.testing.assert_array_equal(proba, [[0, 1], [1, 0]])


# --------------------------------------------------------------------------- retrain --models


def test_retrain_trains_a_tree_model_when_named(tmp_path):
    """A tiny retrain of ``decision-tree`` alone, on generated audio: its bundle loads and tags."""
    from conftest import _synthetic_genre_folder

    data = _synthetic_genre_folder(tmp_path / "data", clips_per_genre=4, seconds=6.0)
    out = tmp_path / "models"
    result = CliRunner().invoke(main_command(), [
        "retrain", "--data", str(data), "--out", str(out), "--models", "decision-tree", "--no-ablation",
        "--no-nested", "--no-augment", "--no-robustness", "--cache", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 0, result.output
    assert catalogue.available(out) == ["decision-tree"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["decision-tree"]["metrics"]["grouped_cv"]["track_balanced_accuracy"] <= 1
    loaded = catalogue.load(out / "decision-tree", registry())
    assert loaded.classes.tolist() == ["classical", "metal"]
    assert not list((out / "decision-tree").glob("*.pkl"))


def main_command():
    from genre_tagger.cli import main
    return main
