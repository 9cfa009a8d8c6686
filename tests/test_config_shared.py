"""#32: one resolution of the configuration for every command: the cache set for scan is
the cache retrain and evaluate read, ``~`` expanded; a setting outside every table is
every command's that has it."""

from __future__ import annotations

from pathlib import Path

import pytest

from genre_tagger.cli import main
from genre_tagger.config import ConfigError, read_config


def test_the_cache_set_for_scan_is_every_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "config.toml"
    path.write_text('[scan]\ncache = "~/music-cache.sqlite"\njobs = 2\n')
    config = read_config(main, path)
    expected = str(tmp_path / "music-cache.sqlite")
    for command in ("scan", "retrain", "evaluate"):
        assert config.commands[command]["cache_path"] == expected, command
    assert "jobs" not in config.commands.get("retrain", {})  # only the cache is shared from a table


def test_a_commands_own_cache_wins_and_top_level_settings_reach_every_command(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('jobs = 2\n[scan]\ncache = "/a.sqlite"\n[retrain]\ncache = "/b.sqlite"\n')
    config = read_config(main, path)
    assert config.commands["scan"]["cache_path"] == "/a.sqlite"
    assert config.commands["retrain"]["cache_path"] == "/b.sqlite"
    assert config.commands["evaluate"]["cache_path"] == "/a.sqlite"
    assert config.commands["scan"]["jobs"] == config.commands["retrain"]["jobs"] == 2


def test_a_top_level_setting_no_command_has_is_an_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('colour = "blue"\n')
    with pytest.raises(ConfigError, match="no command has the setting 'colour'"):
        read_config(main, path)
