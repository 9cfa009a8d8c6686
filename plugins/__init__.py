"""The built-in plugins of genre-tagger, installed as the ``genre_tagger_plugins`` package.

Each module here is an ordinary pluggy plugin registered through the ``genre_tagger``
entry-point group in ``pyproject.toml``, exactly as a third-party plugin would be.
"""
