"""Placeholder: being written (logistic regression on hog-mel)."""
