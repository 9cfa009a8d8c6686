"""A user's own defaults for the commands, from a TOML file (``genre-tagger config`` shows them).

The file is ``config.toml`` in the platform's configuration folder
(``~/.config/genre-tagger/config.toml`` on Linux; ``$GENRE_TAGGER_CONFIG`` names another)::

    [scan]
    model = "musicnn-logreg"
    policy = "overwrite"
    min_confidence = 0.6
    jobs = 2
    cache = "~/music-cache.sqlite"

    [genre_names]          # tag values, for scan (as --genre-name)
    hiphop = "Hip Hop"

    [evaluate]
    jobs = 2

Each table is a command and each key one of its options, spelled as on the command line
without the dashes (``min-confidence`` or ``min_confidence``); a key outside every table is
the setting of every command that has it, and ``cache``, wherever it is set, is every
command's (one cache, so that ``retrain`` and ``evaluate`` read what ``scan`` analysed). An option given on the
command line wins over the file, which wins over the built-in default. What names one
run's own files (``--report``, ``--journal``, ...) and ``--write`` cannot be set here: a scan
stays a dry run unless asked.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import click

#: options a configuration file may not set
NOT_CONFIGURABLE = frozenset({"write", "force", "report", "journal", "json", "plot", "labels", "out", "data", "from-tags", "last",
                              "list", "quiet"})


#: settings that, set in one command's table, are every command's: one cache for all
SHARED = ("cache",)


class ConfigError(Exception):
    """The configuration file cannot be used; one line naming it and what is wrong."""


def config_path() -> Path:
    """``$GENRE_TAGGER_CONFIG``, else ``config.toml`` in the platform's configuration folder."""
    if os.environ.get("GENRE_TAGGER_CONFIG"):
        return Path(os.environ["GENRE_TAGGER_CONFIG"]).expanduser()
    import platformdirs

    return platformdirs.user_config_path("genre-tagger") / "config.toml"


@dataclass
class Config:
    """What the file at ``path`` sets: per command, ``{option name: value}``, as click's
    ``default_map`` takes it (parameter names, values click converts and checks)."""

    path: Path
    exists: bool
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: list[tuple[str, str, Any]] = field(default_factory=list)  # (command, --option, value), for showing


def _option_names(command: click.Command) -> dict[str, str]:
    """``{spelling in the file: parameter name}`` of a command's configurable options."""
    names = {}
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        long = next((opt for opt in param.opts if opt.startswith("--")), None)
        if long is None:
            continue
        spelled = long[2:]
        if spelled in NOT_CONFIGURABLE or param.name in NOT_CONFIGURABLE:
            continue
        names[spelled] = names[spelled.replace("-", "_")] = param.name
    return names


def read_config(group: click.Group, path: Path | None = None) -> Config:
    """The configuration of ``path`` (default :func:`config_path`) for the commands of
    ``group``; :class:`ConfigError` for a file that is not TOML or sets what no command has."""
    path = config_path() if path is None else path
    if not path.is_file():
        return Config(path, False)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: not a readable TOML file ({error})") from None
    config = Config(path, True)
    genre_names = data.pop("genre_names", None)
    # a setting outside every table is every command's that has the option; the cache is one
    # for all commands wherever it is set, so a retrain reads what a scan cached
    everywhere = {key: data.pop(key) for key in [k for k, v in data.items() if not isinstance(v, dict)]}
    for table in data.values():
        if isinstance(table, dict):
            everywhere.update({key: table[key] for key in SHARED if key in table and key not in everywhere})
    for key, value in everywhere.items():
        takers = [name for name, command in group.commands.items() if key in _option_names(command)]
        if not takers:
            raise ConfigError(f"{path}: no command has the setting {key!r}")
        for name in takers:
            data.setdefault(name, {}).setdefault(key, value)
    for command_name, settings in data.items():
        command = group.commands.get(command_name)
        if command is None or not isinstance(settings, dict):
            known = ", ".join(sorted(group.commands))
            raise ConfigError(f"{path}: [{command_name}] is no command's table (commands: {known}; and [genre_names])")
        options = _option_names(command)
        for key, value in settings.items():
            if key == "genre_names" and isinstance(value, dict):
                genre_names = {**(genre_names or {}), **value}
                continue
            if key not in options:
                known = ", ".join(sorted(k for k in options if "_" not in k or k.replace("_", "-") not in options))
                raise ConfigError(f"{path}: [{command_name}] has no setting {key!r} (settings: {known})")
            if isinstance(value, str) and value.startswith("~"):
                value = str(Path(value).expanduser())
            config.commands.setdefault(command_name, {})[options[key]] = value
            config.settings.append((command_name, "--" + key.replace("_", "-"), value))
    if genre_names is not None:
        if not isinstance(genre_names, dict) or not all(isinstance(v, str) for v in genre_names.values()):
            raise ConfigError(f"{path}: [genre_names] must map class names to tag values, e.g. hiphop = \"Hip Hop\"")
        config.commands.setdefault("scan", {})["genre_names"] = tuple(f"{k}={v}" for k, v in genre_names.items())
        config.settings += [("scan", "--genre-name", f"{k}={v}") for k, v in genre_names.items()]
    return config
