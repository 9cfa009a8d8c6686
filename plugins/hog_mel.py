"""Placeholder: being written (HOG of log-mel spectrograms)."""
