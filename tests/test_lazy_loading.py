"""Start-up of a scan answered from the cache: no model is made, no heavy library imported.

A second scan of an unchanged library only needs each bundle's checksum (its cache key),
so :func:`genre_tagger.models.bundle.load` checks the bundle but defers the model itself, and
the plugins import scikit-learn, LightGBM, scikit-image and numba only where they are used.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import audiofactory
from genre_tagger.models import bundle, catalogue, ensemble
from genre_tagger.pipeline.cache import Cache
from genre_tagger.cli import main
from genre_tagger.plugins import registry
from genre_tagger.tagging.scan import ScanOptions, Scanner
from genre_tagger.tagging.tags import read_genres

HEAVY = ("sklearn", "lightgbm", "skimage", "numba", "scipy", "pandas")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """knn and lightgbm bundles fitted on random gtzan57-shaped rows, and their ensemble."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (20, 57)), rng.normal(3, 1, (20, 57))])
    y = np.array(["classical"] * 20 + ["metal"] * 20)
    groups = np.repeat(np.arange(8), 5)
    plugins = registry()
    versions = {"gtzan57": plugins.feature_extractor("gtzan57").version}
    out = tmp_path_factory.mktemp("lazy") / "models"
    fitted = {
        "knn": plugins.model("knn").make(n_neighbors=(3,), weights=("uniform",)).fit(X, y, groups),
        "lightgbm": plugins.model("lightgbm").make(n_estimators=10).fit(X, y, groups),
    }
    for name, model in fitted.items():
        bundle.save(bundle.Bundle(name, versions, model), out / name)
    ensemble.save(out / "ensemble", list(fitted), np.array([0.5, 0.5]), fitted["knn"].classes_, {}, {})
    return out


def test_loading_a_bundle_for_the_cache_imports_no_heavy_library(models):
    """What a cached scan does before it reads the cache, in a fresh interpreter."""
    script = f"""
import sys
import genre_tagger.cli, genre_tagger.tagging.scan
from genre_tagger.models import catalogue
from genre_tagger.plugins import registry
loaded = catalogue.load({str(models / 'ensemble')!r}, registry())
assert loaded.checksum and loaded.name == "ensemble" and list(loaded.classes) == ["classical", "metal"]
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_help_imports_neither_numpy_nor_the_models():
    """``genre-tagger --help`` (#29 item 4: under 0.5 s) imports only what defines the
    commands: numpy and the models come with the command that uses them."""
    script = """
import sys
from click.testing import CliRunner
from genre_tagger.cli import main
result = CliRunner().invoke(main, ["--help"])
assert result.exit_code == 0 and "scan" in result.output, result.output
print(sorted(m for m in ("numpy", "genre_tagger.models.catalogue", "genre_tagger.pipeline.cache", "pluggy")
             if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_model_is_made_once_on_first_use(models, monkeypatch):
    model_class = registry().model("lightgbm").estimator_class()
    real_load, made = model_class.load, []
    monkeypatch.setattr(model_class, "load", classmethod(lambda cls, state: made.append(state) or real_load(state)))
    loaded = bundle.load(models / "lightgbm", registry())
    assert made == [] and loaded.name == "lightgbm" and loaded.checksum
    X = np.random.default_rng(1).normal(1.5, 2, (6, 57))
    proba = loaded.predict_proba({"gtzan57": X})
    assert proba.shape == (6, 2) and len(made) == 1
    np.testing.assert_array_equal(loaded.predict_proba({"gtzan57": X}), proba)
    assert len(made) == 1
    assert list(loaded.classes) == [str(c) for c in loaded.model.classes_]


def _refuse_to_load(monkeypatch):
    """Every knn model the plugin is asked to make fails, as a plugin that cannot read a state would."""
    def refuse(cls, state):
        raise ValueError("cannot read this state")

    monkeypatch.setattr(registry().model("knn").estimator_class(), "load", classmethod(refuse))


def test_a_cached_scan_never_makes_the_model(models, tmp_path, monkeypatch):
    track = audiofactory.write(tmp_path / "a.wav", audiofactory.noise(3.5, 22050, 0.3))
    with Cache(tmp_path / "cache.sqlite") as cache:
        first = Scanner(catalogue.load(models / "ensemble", registry()), ScanOptions(), cache).scan([track])
        assert first.from_cache == 0 and first.results[0].status == "would tag"
        _refuse_to_load(monkeypatch)
        again = Scanner(catalogue.load(models / "ensemble", registry()), ScanOptions(), cache).scan([track])
    assert again.from_cache == 1 and again.results == first.results


def test_a_model_that_cannot_be_made_fails_the_scan_once_with_a_clear_error(models, tmp_path, monkeypatch):
    """Not a "prediction failed" on every file: the command stops, as for a damaged bundle."""
    _refuse_to_load(monkeypatch)
    tracks = [audiofactory.write(tmp_path / f"{name}.wav", audiofactory.noise(3.5, 22050, 0.3)) for name in "ab"]
    done = CliRunner().invoke(main, ["scan", str(tmp_path), "--models-dir", str(models), "--model", "knn", "--write",
                                     "--cache", str(tmp_path / "cache.sqlite")], catch_exceptions=False)
    assert done.exit_code == 2, done.output
    message = " ".join(done.stderr.split())
    assert message.count("error:") == 1 and "the knn plugin could not load this bundle (cannot read this state)" in message
    assert str(models / "knn") in message and "prediction failed" not in message
    assert all(read_genres(track) == [] for track in tracks)
