"""The plugin system: built-ins come from entry points; a third-party plugin plugs in the same way."""

import types

import numpy as np
import pytest
from click.testing import CliRunner

from genre_tagger.cli import main
from genre_tagger.hookspecs import hookimpl
from genre_tagger.plugins import PluginError, Registry, make_manager, registry


def test_builtin_plugins_come_from_entry_points():
    plugins = registry()
    assert {"knn", "lightgbm"} <= set(plugins.models)
    assert "gtzan57" in plugins.feature_extractors
    assert len(plugins.feature_extractor("gtzan57").feature_names) == 57
    sources = {row.name: row.source for row in plugins.describe()}
    assert "genre-tagger" in sources["knn"] and "genre_tagger_plugins.knn" in sources["knn"]


def test_plugins_command_lists_name_version_kind_and_source():
    result = CliRunner().invoke(main, ["plugins"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("gtzan57", "timbre-rhythm", "knn", "lightgbm", "logreg", "features", "model", "genre_tagger_plugins.logreg"):
        assert text in result.output


class Loudness:
    name = "loudness"
    version = "1"
    feature_names = ["rms"]

    def extract(self, segments):
        return np.sqrt((segments.astype(float) ** 2).mean(axis=1, keepdims=True))


def test_a_third_party_plugin_registers_like_a_builtin():
    plugin = types.ModuleType("third_party")
    plugin.genre_tagger_feature_extractors = hookimpl(lambda: [Loudness()])
    plugins = Registry(make_manager(extra_plugins=(plugin,)))
    assert plugins.feature_extractor("loudness").extract(np.ones((2, 10), np.float32)).shape == (2, 1)


def test_duplicate_names_are_refused():
    plugin = types.ModuleType("clash")
    plugin.genre_tagger_feature_extractors = hookimpl(lambda: [Loudness(), Loudness()])
    with pytest.raises(PluginError, match="two plugins register"):
        Registry(make_manager(extra_plugins=(plugin,)))


def test_unknown_names_say_what_is_known():
    with pytest.raises(PluginError, match="known: .*knn"):
        registry().model("svm")
