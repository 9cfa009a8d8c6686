"""Standardising columns, with the fitted statistics as plain arrays for a model's state."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def fit_standardiser(X: np.ndarray) -> dict[str, np.ndarray]:
    """``{"scaler_mean", "scaler_scale"}`` of ``X [n, d]``: scikit-learn's StandardScaler
    statistics (a constant column gets scale 1)."""
    scaler = StandardScaler().fit(X)
    return {"scaler_mean": scaler.mean_, "scaler_scale": scaler.scale_}


def standardise(X: np.ndarray, statistics: dict[str, np.ndarray]) -> np.ndarray:
    """``X [n, d]`` with every column at zero mean and unit variance, as StandardScaler's
    transform computes it."""
    return (np.asarray(X, dtype=float) - statistics["scaler_mean"]) / statistics["scaler_scale"]
