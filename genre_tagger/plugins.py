"""Discovering plugins and looking up the feature extractors and models they provide."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pluggy

from genre_tagger import hookspecs
from genre_tagger.hookspecs import FeatureExtractor, ModelSpec

__all__ = ["PluginError", "PluginInfo", "Registry", "make_manager", "registry"]


class PluginError(Exception):
    """A plugin is missing, duplicated or does not honour the contract."""


@dataclass(frozen=True)
class PluginInfo:
    """One registered feature extractor or model, for ``genre-tagger plugins``."""

    name: str
    version: str
    kind: str  # "features" or "model"
    source: str  # distribution and module it came from
    consumes: str = ""  # for models: the feature extractors they need


class Registry:
    """The feature extractors and models of every registered plugin, by name."""

    def __init__(self, manager: pluggy.PluginManager):
        self.manager = manager
        self.feature_extractors: dict[str, FeatureExtractor] = {}
        self.models: dict[str, ModelSpec] = {}
        self._source: dict[tuple[str, str], str] = {}
        for plugin in manager.get_plugins():
            source = _describe(manager, plugin)
            for extractor in _call(manager, plugin, "genre_tagger_feature_extractors"):
                if not isinstance(extractor, FeatureExtractor):
                    raise PluginError(f"{extractor!r} from {source} does not implement FeatureExtractor")
                self._add("features", extractor.name, extractor, self.feature_extractors, source)
            for spec in _call(manager, plugin, "genre_tagger_models"):
                if not isinstance(spec, ModelSpec):
                    raise PluginError(f"{spec!r} from {source} is not a ModelSpec")
                self._add("model", spec.name, spec, self.models, source)

    def _add(self, kind: str, name: str, obj, table: dict, source: str) -> None:
        if name in table:
            raise PluginError(
                f"two plugins register the {kind} {name!r}: {self._source[kind, name]} and {source}"
            )
        table[name] = obj
        self._source[kind, name] = source

    def feature_extractor(self, name: str) -> FeatureExtractor:
        try:
            return self.feature_extractors[name]
        except KeyError:
            known = ", ".join(sorted(self.feature_extractors)) or "none"
            raise PluginError(f"no feature extractor named {name!r} is registered (known: {known})") from None

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise PluginError(f"no model named {name!r} is registered (known: {known})") from None

    def default_models(self) -> list[str]:
        """The models a ``retrain`` that names none trains: those registered with
        ``retrain_by_default`` (see :class:`~genre_tagger.hookspecs.ModelSpec`), sorted."""
        return sorted(name for name, spec in self.models.items() if spec.retrain_by_default)

    def describe(self) -> list[PluginInfo]:
        rows = [
            PluginInfo(name, ext.version, "features", self._source["features", name])
            for name, ext in sorted(self.feature_extractors.items())
        ]
        rows += [
            PluginInfo(name, spec.version, "model", self._source["model", name], " ".join(spec.feature_extractors))
            for name, spec in sorted(self.models.items())
        ]
        return rows


def _call(manager: pluggy.PluginManager, plugin, hook_name: str) -> list:
    impl = getattr(plugin, hook_name, None)
    if impl is None or manager.parse_hookimpl_opts(plugin, hook_name) is None:
        return []
    return list(impl() or [])


def _describe(manager: pluggy.PluginManager, plugin) -> str:
    for module, dist in manager.list_plugin_distinfo():
        if module is plugin:
            return f"{dist.project_name} {dist.version} ({plugin.__name__})"
    return getattr(plugin, "__name__", repr(plugin))


def make_manager(extra_plugins: tuple = ()) -> pluggy.PluginManager:
    """A plugin manager with every ``genre_tagger`` entry point loaded, plus ``extra_plugins``."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.load_setuptools_entrypoints(hookspecs.PROJECT)
    for plugin in extra_plugins:
        manager.register(plugin)
    return manager


@functools.cache
def registry() -> Registry:
    """The process-wide registry of installed plugins (loaded once)."""
    return Registry(make_manager())
