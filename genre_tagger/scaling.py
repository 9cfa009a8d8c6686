"""A fitted StandardScaler as plain arrays, for model plugins' pickle-free state."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def scaler_arrays(scaler: StandardScaler) -> dict[str, np.ndarray]:
    """``{"scaler_mean", "scaler_scale"}``: all a fitted scaler needs to transform."""
    return {"scaler_mean": scaler.mean_, "scaler_scale": scaler.scale_}


def scaler_from_arrays(arrays: dict[str, np.ndarray]) -> StandardScaler:
    """The StandardScaler whose state :func:`scaler_arrays` returned."""
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_ = arrays["scaler_mean"], arrays["scaler_scale"]
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = len(scaler.mean_)
    return scaler
