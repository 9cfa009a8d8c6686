"""Model bundles trained by ``genre-tagger retrain`` on GTZAN; see README.md here."""
