"""genre-tagger's plugin for MusicBrainz Picard 3: the genre from the audio.

This folder is the plugin as Picard loads it (``MANIFEST.toml`` and this module with
``enable(api)``); ``python -m genre_tagger_picard --out DIR`` copies it where Picard can
install it (see docs/picard.md). Picard is imported by :mod:`.ui` only, when Picard
enables the plugin, so that the build command and :mod:`.command` run without Picard.
"""


def enable(api) -> None:
    """Picard's entry point: the context-menu action, the options page, the script variable."""
    from . import ui

    ui.enable(api)


def disable() -> None:
    """Picard removes every registration itself; nothing else to undo."""
