"""Crafted bundles whose checksums are right (#28, item 8): someone's own-genre models, as a
user downloads them. Each is refused with one line naming the file and the cause, or (a
damaged bundle among several) left out of the default choice with a warning saying so;
none crashes the process, hangs or exhausts memory."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import lightgbm
import numpy as np
import pytest

from genre_tagger.models import bundle, catalogue
from genre_tagger.models.bundle import BundleError
from genre_tagger.plugins import registry
from genre_tagger_plugins.estimators import lightgbm as lightgbm_estimator

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def copy_bundles(tmp_path: Path, *names: str) -> Path:
    """A models folder holding copies of the shipped bundles ``names``."""
    models = tmp_path / "models"
    for name in names:
        shutil.copytree(PRETRAINED / name, models / name)
    return models


def edit_metadata(folder: Path, change) -> None:
    meta_path = folder / bundle.META_FILE
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))


def replace_file(folder: Path, name: str, data: bytes) -> None:
    """Write ``data`` as the bundle file ``name`` and record its checksum as bundle.py does."""
    (folder / name).write_bytes(data)
    edit_metadata(folder, lambda meta: meta["files"].update({name: bundle.sha256(data)}))


# --------------------------------------------------------------------------- LightGBM boosters

def _first_tree_line(text: str, field: str) -> str:
    start = text.index("Tree=0\n")
    line_start = text.index(f"\n{field}=", start) + 1
    return text[line_start:text.index("\n", line_start)]


def _edit_field(field: str, value: str):
    """A change of the booster text: the first tree's ``field`` gets ``value``."""
    return lambda text: text.replace(_first_tree_line(text, field), f"{field}={value}", 1)


def _edit_first_value(field: str, value: str):
    def change(text: str) -> str:
        line = _first_tree_line(text, field)
        values = line.partition("=")[2].split(" ")
        return text.replace(line, f"{field}=" + " ".join([value, *values[1:]]), 1)
    return change


BOOSTERS = {
    "absurd num_leaves": (_edit_field("num_leaves", "1000000000"), "num_leaves"),
    "split_feature beyond the features": (_edit_first_value("split_feature", "100000"), "feature beyond its 57"),
    "a negative split_feature": (_edit_first_value("split_feature", "-3"), "feature beyond its 57"),
    "left_child out of range": (_edit_first_value("left_child", "1000"), "left_child outside"),
    "right_child out of range": (_edit_first_value("right_child", "-1000"), "right_child outside"),
    "a leaf reached twice": (_edit_first_value("right_child", "-1"), "do not make one tree"),
    "a child pointing back at its parent": (_edit_first_value("left_child", "0"), "left_child outside"),
    "arrays shorter than the leaves": (_edit_field("leaf_value", "0.5 0.5"), "leaf_value holds 2 values"),
    "a NaN threshold": (_edit_first_value("threshold", "nan"), "threshold is not a finite number"),
    "an infinite leaf value": (_edit_first_value("leaf_value", "1e999"), "leaf_value is not a finite number"),
    "a categorical split": (_edit_field("num_cat", "1"), "num_cat is not 0"),
    "other classes in the header": (lambda text: text.replace("num_class=10\n", "num_class=3\n", 1), "num_class"),
    "other features in the header": (lambda text: text.replace("max_feature_idx=56\n", "max_feature_idx=99\n", 1),
                                     "max_feature_idx"),
    "truncated in its middle": (lambda text: text[:len(text) // 2], "truncated"),
    "truncated inside a tree": (lambda text: text[:text.index("Tree=5\n") + 40] + "\n" + text[text.index("end of trees"):],
                                "tree 5"),
    "not a booster": (lambda text: "hello\n", "not a LightGBM booster"),
}

_LOAD = """
import sys
from genre_tagger.models import catalogue
from genre_tagger.models.bundle import BundleError
from genre_tagger.plugins import registry
try:
    catalogue.load(sys.argv[1], registry()).load_model()
except BundleError as error:
    print(error)
    sys.exit(2)
"""


@pytest.mark.parametrize("case", sorted(BOOSTERS))
def test_a_crafted_booster_is_refused_in_one_line(case, tmp_path):
    """In a process of its own: the LightGBM parser these texts reached crashed (rc 134 after
    10,000 [LightGBM] [Fatal] lines, rc 139 for a truncated text)."""
    change, words = BOOSTERS[case]
    folder = copy_bundles(tmp_path, "lightgbm") / "lightgbm"
    booster = folder / "booster.txt"
    replace_file(folder, "booster.txt", change(booster.read_text()).encode())
    done = subprocess.run([sys.executable, "-c", _LOAD, str(folder)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, (done.returncode, done.stdout[-500:], done.stderr[-2000:])
    assert "[LightGBM]" not in done.stdout + done.stderr and done.stderr == ""
    assert done.stdout.count("\n") == 1 and str(folder) in done.stdout and "booster.txt" in done.stdout, done.stdout
    assert words in done.stdout, done.stdout


def test_more_trees_than_the_bound_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(lightgbm_estimator, "MAX_TREES", 100)
    text = (PRETRAINED / "lightgbm" / "booster.txt").read_text()
    with pytest.raises(lightgbm_estimator.BoosterError, match="more than 100 trees"):
        lightgbm_estimator.checked_booster(text, 10, 57)


@pytest.mark.parametrize("name, n_features", [("lightgbm", 57), ("lightgbm-plus", 57 + 144)])
def test_a_shipped_booster_passes_unchanged_and_predicts_exactly_as_before(name, n_features):
    text = (PRETRAINED / name / "booster.txt").read_text()
    checked = lightgbm_estimator.checked_booster(text, 10, n_features)
    trees_end = text.index("end of trees\n") + len("end of trees\n")
    assert checked.startswith(text[:trees_end])
    rows = np.random.default_rng(0).normal(0, 2, (300, n_features))
    rows[::7, 3] = np.nan
    np.testing.assert_array_equal(lightgbm.Booster(model_str=checked).predict(rows),
                                  lightgbm.Booster(model_str=text).predict(rows))


def test_a_binary_booster_passes(tmp_path):
    """Two own genres: LightGBM's binary objective, one tree a round."""
    rng = np.random.default_rng(1)
    rows = np.vstack([rng.normal(0, 1, (40, 5)), rng.normal(2, 1, (40, 5))])
    model = lightgbm_estimator.LightGBMGenreModel(n_estimators=20).fit(rows, np.repeat(["jazz", "rock"], 40))
    text = model.booster_.model_to_string()
    assert lightgbm_estimator.checked_booster(text, 2, 5).startswith(text[:text.index("end of trees")])
    with pytest.raises(lightgbm_estimator.BoosterError, match="num_class"):
        lightgbm_estimator.checked_booster(text, 3, 5)


# --------------------------------------------------------------------------- ensembles


def _ensemble_folder(tmp_path: Path) -> Path:
    """A copy of the shipped ensemble with its members (whichever retrain chose) and logreg."""
    members = bundle.read_metadata(catalogue.default_models_dir() / "ensemble")["members"]
    return copy_bundles(tmp_path, "ensemble", *sorted(set(members) | {"logreg", "musicnn-logreg"})) / "ensemble"


def test_an_ensemble_naming_itself_is_refused_also_when_choosing_the_default(tmp_path, caplog):
    folder = _ensemble_folder(tmp_path)
    edit_metadata(folder, lambda meta: meta.update(members=["ensemble", "logreg", "musicnn-logreg"]))
    with pytest.raises(BundleError, match="names itself"):
        catalogue.choose("ensemble", folder.parent, registry())
    with caplog.at_level(logging.WARNING, logger="genre_tagger"):
        assert catalogue.best_model(folder.parent) != "ensemble"
    assert any("names itself" in record.getMessage() and str(folder) in record.getMessage() for record in caplog.records)


def test_ensembles_naming_each_other_are_refused(tmp_path, caplog):
    folder = _ensemble_folder(tmp_path)
    shutil.copytree(folder, folder.parent / "other")
    edit_metadata(folder, lambda meta: meta.update(members=["other", "logreg", "musicnn-logreg"]))
    edit_metadata(folder.parent / "other", lambda meta: meta.update(members=["ensemble", "logreg", "musicnn-logreg"]))
    for name in ("ensemble", "other"):
        with pytest.raises(BundleError, match="is an ensemble itself"):
            catalogue.choose(name, folder.parent, registry())
    with caplog.at_level(logging.WARNING, logger="genre_tagger"):
        assert catalogue.best_model(folder.parent) not in ("ensemble", "other")


def _loads_nothing(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a member was loaded before the ensemble's metadata was checked")
    monkeypatch.setattr(catalogue.bundle_module, "load", refuse)


def test_an_ensemble_of_5000_members_is_refused_before_any_is_loaded(tmp_path, monkeypatch):
    folder = _ensemble_folder(tmp_path)
    members = ["hog-logreg", "logreg", "musicnn-logreg"] * 1667
    edit_metadata(folder, lambda meta: meta.update(members=members, weights=[1 / len(members)] * len(members)))
    _loads_nothing(monkeypatch)
    with pytest.raises(BundleError, match=f"at most {bundle.MAX_MEMBERS} members") as refused:
        catalogue.load(folder, registry())
    assert str(folder) in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("weights", [[float("nan"), 0.5, 0.5], [float("inf"), 0.0, 0.0], [-0.5, 0.5, 1.0],
                                     [True, False, False], [0.3, 0.3, 0.3], [0.6, "0.4", 0.0]])
def test_ensemble_weights_that_are_not_a_mean_are_refused_before_any_member_is_loaded(weights, tmp_path, monkeypatch):
    folder = _ensemble_folder(tmp_path)
    edit_metadata(folder, lambda meta: meta.update(weights=weights))
    _loads_nothing(monkeypatch)
    with pytest.raises(BundleError, match="weights must be finite non-negative numbers summing to 1") as refused:
        catalogue.load(folder, registry())
    assert str(folder) in str(refused.value)


def test_ensemble_weights_not_one_per_member_are_refused(tmp_path):
    folder = _ensemble_folder(tmp_path)
    edit_metadata(folder, lambda meta: meta.update(weights=[0.5, 0.5]))
    with pytest.raises(BundleError, match="weights must be one per member"):
        catalogue.load(folder, registry())


def test_a_member_named_twice_is_refused_before_any_is_loaded(tmp_path, monkeypatch):
    folder = _ensemble_folder(tmp_path)
    edit_metadata(folder, lambda meta: meta.update(members=["logreg", "logreg", "musicnn-logreg"]))
    _loads_nothing(monkeypatch)
    with pytest.raises(BundleError, match="twice"):
        catalogue.load(folder, registry())


# --------------------------------------------------------------------------- metrics, calibration


@pytest.mark.parametrize("metrics", [
    {"robustness": {"mp3": {}}},
    {"robustness": {"mp3": {"track_balanced_accuracy": "high"}}},
    {"robustness": ["mp3"]},
    {"grouped_cv": {"track_balanced_accuracy": float("nan")}},
    {"grouped_cv": {"track_balanced_accuracy": 7.0}},
    {"grouped_cv": "good"},
])
def test_metrics_without_a_usable_score_leave_the_bundle_out_of_the_default_choice(metrics, tmp_path, caplog):
    models = copy_bundles(tmp_path, "logreg", "knn")
    edit_metadata(models / "logreg", lambda meta: meta.update(metrics=metrics))
    with caplog.at_level(logging.WARNING, logger="genre_tagger"):
        assert catalogue.best_model(models) == "knn"
    (warning,) = [record.getMessage() for record in caplog.records]
    assert str(models / "logreg" / "bundle.json") in warning and "metrics" in warning and "\n" not in warning


@pytest.mark.parametrize("change", [
    lambda assessment: assessment["calibrator"].update(method="platt", a=float("nan")),
    lambda assessment: assessment["calibrator"].update(method="platt", b=float("inf")),
    lambda assessment: assessment["calibrator"].update(method="isotonic", x=[0.1, 0.5], y=[0.2, float("nan")]),
    lambda assessment: assessment["calibrator"].update(method="isotonic", x=[0.1, 0.5], y=[0.2]),
    lambda assessment: assessment["calibrator"].update(method="exec"),
    lambda assessment: assessment.update(min_confidence=float("nan")),
    lambda assessment: assessment.update(outside=-1.0),
])
def test_a_calibrator_or_threshold_that_would_give_nan_confidences_is_refused(change, tmp_path):
    """A NaN in the calibration gave every track ``Blues (nan%)``."""
    folder = copy_bundles(tmp_path, "logreg") / "logreg"
    edit_metadata(folder, lambda meta: change(meta["assessment"]))
    with pytest.raises(BundleError, match="malformed assessment") as refused:
        catalogue.load(folder, registry())
    assert str(folder / "bundle.json") in str(refused.value)


# --------------------------------------------------------------------------- the default model


def test_a_damaged_default_bundle_is_named_in_a_warning_not_silently_replaced(tmp_path, caplog):
    models = copy_bundles(tmp_path, "musicnn-logreg", "logreg", "knn")
    assert catalogue.best_model(models) == "musicnn-logreg"
    edit_metadata(models / "musicnn-logreg", lambda meta: meta.update(classes="blues"))
    with caplog.at_level(logging.WARNING, logger="genre_tagger"):
        (chosen,) = catalogue.choose(None, models, registry())
    assert chosen.name != "musicnn-logreg"
    (warning,) = [record.getMessage() for record in caplog.records]
    assert str(models / "musicnn-logreg" / "bundle.json") in warning and "classes" in warning
    assert "not a candidate for the default model" in warning


def test_scan_says_which_bundle_it_left_out_of_the_default_choice(tmp_path):
    """The warning reaches the user as a ``warning:`` line, and the scan goes on with the model it names."""
    from click.testing import CliRunner

    import audiofactory
    from genre_tagger.cli import main

    models = copy_bundles(tmp_path, "knn", "lightgbm")
    edit_metadata(models / "lightgbm", lambda meta: meta.update(classes="blues"))
    track = audiofactory.write(tmp_path / "a.wav", audiofactory.noise(4, amplitude=0.3))
    done = CliRunner().invoke(main, ["scan", str(track), "--models-dir", str(models), "--no-cache"])
    message = " ".join(done.output.split())
    assert done.exit_code == 0 and "Traceback" not in done.output, done.output
    assert f"warning: {models / 'lightgbm' / 'bundle.json'}: malformed bundle metadata" in message, message
    assert "not a candidate for the default model" in message
