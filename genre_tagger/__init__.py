"""genre-tagger: listen to a music library and tag every track with its genre."""

__version__ = "0.1.0"
