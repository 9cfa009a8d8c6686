"""How far to trust a track's vote: a confidence that is a probability, and how unlike the
music a model learned from the track is.

- :class:`Calibrator` maps a track's score (the mean probability its segments give the
  genre it was voted) to the probability that this genre is right, as measured on tracks
  the model never trained on (``retrain`` fits it on the grouped CV's out-of-fold tracks).
- :class:`Novelty` measures how far a track's feature rows lie from those of each genre
  the model was trained on: a class-conditional Mahalanobis distance with one shared
  covariance (Lee et al., 2018) over all the model's columns, divided by its median over
  music of the known genres. ``retrain`` fits it on the training clips *and* their
  degraded copies (band-limited, lossy, loud-mastered), so that the recording chain of
  known music does not move it far; noise, tones, sweeps, clicks and synthetic speech lie
  far beyond every such copy, over every column more clearly than over any one
  extractor's (``research/explore_not_music.py``). With a second view, the first is a model's evidence for a
  genre it lacks: where a model reads an extractor that knows more genres than the
  model's classes (musicnn, whose output layer was trained on 50 listeners' tags), the
  largest probability it gives a tag naming a genre the model lacks (electronic,
  ambient, ...); the tags were learnt over 200,000 commercial tracks of every chain.
- :class:`Assessor` holds both and the thresholds ``retrain`` chose from its measurements,
  and says whether a track is to be tagged or reported uncertain, and why.

Everything here is plain arrays and numbers, saved with the bundle without pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Assessment", "Assessor", "Calibrator", "Novelty", "OutsideLayer", "expected_calibration_error", "reliability", "risk_coverage",
]

#: reasons a track is not tagged, as the report's ``reason`` column spells them
LOW_CONFIDENCE, OUTSIDE, NOT_MUSIC = "low-confidence", "outside-genres", "not-music"


@dataclass
class Calibrator:
    """Score -> probability of being right: ``isotonic`` (a non-decreasing step function
    through ``x``, ``y``) or ``platt`` (``sigmoid(a * logit(score) + b)``)."""

    method: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, scores: np.ndarray, correct: np.ndarray, method: str, weights: np.ndarray | None = None) -> Calibrator:
        """Fitted to tracks' ``scores`` and whether each was ``correct``, each track counting
        its ``weight`` (default 1)."""
        scores, correct = np.asarray(scores, float), np.asarray(correct, float)
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, correct, sample_weight=weights)
            return cls("isotonic", iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist())
        from sklearn.linear_model import LogisticRegression

        logits = _logit(scores)[:, None]
        platt = LogisticRegression(C=1e6).fit(logits, correct.astype(int), sample_weight=weights) \
            if 0 < correct.mean() < 1 else None
        if platt is None:
            return cls("platt", a=0.0, b=float(_logit(np.array([np.clip(correct.mean(), 1e-3, 1 - 1e-3)]))[0]))
        return cls("platt", a=float(platt.coef_[0, 0]), b=float(platt.intercept_[0]))

    def __call__(self, scores: np.ndarray | float) -> np.ndarray | float:
        scores = np.asarray(scores, float)
        if self.method == "isotonic":
            out = np.interp(scores, self.x, self.y) if self.x else np.full_like(scores, 0.5)
        else:
            out = 1 / (1 + np.exp(-(self.a * _logit(scores) + self.b)))
        return out if out.ndim else float(out)

    def to_json(self) -> dict:
        return {"method": self.method, "x": self.x, "y": self.y, "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, data: dict) -> Calibrator:
        """The calibrator ``data`` describes; ``ValueError`` unless it is one that gives a
        probability for every score (a NaN in it would give every track a NaN confidence)."""
        calibrator = cls(str(data["method"]), [float(v) for v in data.get("x", [])],
                         [float(v) for v in data.get("y", [])], float(data.get("a", 1.0)), float(data.get("b", 0.0)))
        x, y = np.asarray(calibrator.x), np.asarray(calibrator.y)
        if calibrator.method not in ("isotonic", "platt") or len(x) != len(y) or not np.isfinite(
                [*x, calibrator.a, calibrator.b]).all() or not ((0 <= y) & (y <= 1)).all() or (np.diff(x) < 0).any():
            raise ValueError("the calibrator is not an isotonic or platt one of finite numbers giving probabilities")
        return calibrator


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    """ECE: the mean gap between confidence and accuracy over equal-width bins, weighted
    by the tracks in each."""
    bins = reliability(confidence, correct, n_bins)
    total = sum(b["tracks"] for b in bins)
    return float(sum(b["tracks"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / max(total, 1))


def reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> list[dict]:
    """The reliability diagram: per non-empty confidence bin, its range, its tracks, their
    mean confidence and their accuracy."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0, 1, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    return [{"low": float(edges[i]), "high": float(edges[i + 1]), "tracks": int((index == i).sum()),
             "confidence": float(confidence[index == i].mean()), "accuracy": float(correct[index == i].mean())}
            for i in range(n_bins) if (index == i).any()]


def risk_coverage(confidence: np.ndarray, correct: np.ndarray, steps=(1.0, 0.9, 0.8, 0.7, 0.6, 0.5)) -> list[dict]:
    """The risk-coverage table: for each share in ``steps``, the accuracy of that share of
    tracks, the most confident first, and the confidence of the last one included."""
    order = np.argsort(-confidence)
    rows = []
    for share in steps:
        n = max(1, int(round(share * len(order))))
        rows.append({"coverage": share, "tracks": n, "accuracy": float(correct[order[:n]].mean()),
                     "min_confidence": float(confidence[order[n - 1]])})
    return rows


#: rows a :class:`Novelty`'s covariance is estimated from, at most (GTZAN's folds have fewer)
COVARIANCE_ROWS = 8_000


@dataclass
class Novelty:
    """Class-conditional Mahalanobis distances of feature rows, in views of the columns
    (``views``: ``[start, stop)`` ranges); see the module docstring. ``scales`` divides
    each view's track distance by the median over known music."""

    views: list[tuple[int, int]]
    mean: np.ndarray  # [n_features] of the standardisation
    scale: np.ndarray  # [n_features]
    class_means: list[np.ndarray]  # per view [n_classes, width]
    precisions: list[np.ndarray]  # per view [width, width]
    scales: list[float]
    outside_layer: OutsideLayer | None = None  # replaces the first view where given

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, views: list[tuple[int, int]],
            outside_layer: OutsideLayer | None = None) -> Novelty:
        """Fitted to rows ``X [n_rows, n_features]`` of genres ``y``. The shared covariance
        is estimated from at most :data:`COVARIANCE_ROWS` rows spread evenly over them: a
        few hundred columns need no more, and a large library's rows would take minutes."""
        from sklearn.covariance import LedoitWolf

        X = np.asarray(X, float)
        mean, scale = X.mean(0), X.std(0)
        scale[scale < 1e-12] = 1.0
        Z = (X - mean) / scale
        classes = np.unique(y)
        some = np.linspace(0, len(Z) - 1, min(len(Z), COVARIANCE_ROWS)).astype(int)
        class_means, precisions = [], []
        for index, (start, stop) in enumerate(views):
            if index == 0 and outside_layer is not None:  # replaced by the layer's evidence: nothing to fit
                class_means.append(np.zeros((len(classes), 0)))
                precisions.append(np.zeros((0, 0)))
                continue
            view = Z[:, start:stop]
            means = np.stack([view[y == c].mean(0) for c in classes])
            residual = view[some] - means[np.searchsorted(classes, y[some])]
            precisions.append(LedoitWolf().fit(residual).precision_)
            class_means.append(means)
        return cls(views, mean, scale, class_means, precisions, [1.0] * len(views), outside_layer)

    def distances(self, X: np.ndarray) -> np.ndarray:
        """``[n_rows, n_views]``: each row's distance to the nearest genre, per view (the
        first: its outside-genre evidence, where there is an :attr:`outside_layer`)."""
        Z = (np.asarray(X, float) - self.mean) / self.scale
        out = []
        for index, ((start, stop), means, precision) in enumerate(zip(self.views, self.class_means, self.precisions)):
            if index == 0 and self.outside_layer is not None:
                out.append(self.outside_layer.evidence(np.asarray(X, float)))
                continue
            view = Z[:, start:stop]
            # (z - m)' P (z - m) = z'Pz - 2 m'Pz + m'Pm for every class at once: one product, not one per class
            projected = view @ precision
            gaps = (np.einsum("ij,ij->i", projected, view)[:, None] - 2 * projected @ means.T
                    + np.einsum("ij,ij->i", means @ precision, means)[None, :])
            out.append(np.maximum(gaps.min(axis=1), 0.0))
        return np.stack(out, axis=1)

    def track(self, X: np.ndarray) -> list[float]:
        """A track's distance per view: the mean over its segments, divided by ``scales``."""
        return (self.distances(X).mean(axis=0) / np.asarray(self.scales)).tolist()

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"novelty_views": np.asarray(self.views, dtype=np.int64), "novelty_mean": self.mean,
               "novelty_scale": self.scale, "novelty_scales": np.asarray(self.scales)}
        for i, (means, precision) in enumerate(zip(self.class_means, self.precisions)):
            out[f"novelty_means_{i}"], out[f"novelty_precision_{i}"] = means, precision
        if self.outside_layer is not None:
            out |= self.outside_layer.arrays()
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Novelty:
        views = [tuple(int(v) for v in row) for row in arrays["novelty_views"]]
        return cls(views, arrays["novelty_mean"], arrays["novelty_scale"],
                   [arrays[f"novelty_means_{i}"] for i in range(len(views))],
                   [arrays[f"novelty_precision_{i}"] for i in range(len(views))],
                   [float(v) for v in arrays["novelty_scales"]], OutsideLayer.from_arrays(arrays))


@dataclass
class OutsideLayer:
    """Evidence that a segment is of a genre outside a model's classes, from a network
    that knows more genres: the largest of ``sigmoid(X[:, start:stop] @ kernel + bias)``,
    the probabilities of its tags naming genres the model lacks (``kernel [width, n_tags]``,
    ``bias [n_tags]``, the columns ``[start, stop)`` of the model's rows it reads)."""

    start: int
    stop: int
    kernel: np.ndarray
    bias: np.ndarray

    def evidence(self, X: np.ndarray) -> np.ndarray:
        """``[n_rows]`` in 0-1."""
        logits = X[:, self.start:self.stop] @ self.kernel + self.bias
        return (1.0 / (1.0 + np.exp(-logits))).max(axis=1)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"outside_columns": np.asarray([self.start, self.stop], np.int64), "outside_kernel": self.kernel,
                "outside_bias": self.bias}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> OutsideLayer | None:
        if "outside_kernel" not in arrays:
            return None
        start, stop = (int(v) for v in arrays["outside_columns"])
        kernel, bias = np.asarray(arrays["outside_kernel"], float), np.asarray(arrays["outside_bias"], float)
        if kernel.ndim != 2 or kernel.shape != (stop - start, len(bias)):
            raise ValueError(f"outside layer of {kernel.shape} for columns {start}-{stop} and {len(bias)} tags")
        return cls(start, stop, kernel, bias)


@dataclass(frozen=True)
class Assessment:
    """What to do with one track: ``confidence`` (the calibrated probability that its genre
    is right), ``novelty`` (its distance per view, 1 = the median of known music), and
    ``reason`` -- ``None`` to tag it, else why it is uncertain."""

    confidence: float
    novelty: tuple[float, ...] = ()
    reason: str | None = None


@dataclass
class Assessor:
    """A model's calibrator, and its novelty thresholds: a track whose novelty exceeds
    ``outside`` in the first view (the outside-genre evidence, or the distance where the
    model has none) is outside the known genres, one beyond ``not_music`` in the last
    (the distance over all the model's columns) is not music.
    ``min_confidence`` is the default below which a track is uncertain (``scan
    --min-confidence`` overrides it). ``max_confidence`` is the most a confidence can
    claim: measured on n held-out tracks, all right, an accuracy is known only down to
    about ``1 - 3 / n`` (the rule of three, a 95 % bound), so a model of 24 tracks never
    says 1.00."""

    calibrator: Calibrator | None = None
    outside: float = float("inf")
    not_music: float = float("inf")
    min_confidence: float = 0.0
    max_confidence: float = 1.0

    def assess(self, score: float, novelty: list[float] | None, min_confidence: float | None = None) -> Assessment:
        confidence = float(self.calibrator(score)) if self.calibrator is not None else float(score)
        confidence = min(confidence, self.max_confidence)
        threshold = self.min_confidence if min_confidence is None else min_confidence
        novelty = tuple(novelty or ())
        reason = None
        if novelty and novelty[-1] > self.not_music:
            reason = NOT_MUSIC
        elif novelty and novelty[0] > self.outside:
            reason = OUTSIDE
        elif confidence < threshold:
            reason = LOW_CONFIDENCE
        return Assessment(confidence, novelty, reason)

    def to_json(self) -> dict:
        return {"calibrator": self.calibrator.to_json() if self.calibrator else None,
                "outside": _finite(self.outside), "not_music": _finite(self.not_music),
                "min_confidence": self.min_confidence, "max_confidence": self.max_confidence}

    @classmethod
    def from_json(cls, data: dict) -> Assessor:
        """The assessor ``data`` describes; ``ValueError`` for a threshold that is NaN or out of range."""
        calibrator = Calibrator.from_json(data["calibrator"]) if data.get("calibrator") else None
        assessor = cls(calibrator, _infinite(data.get("outside")), _infinite(data.get("not_music")),
                       float(data.get("min_confidence", 0.0)), float(data.get("max_confidence", 1.0)))
        if not (assessor.outside >= 0 and assessor.not_music >= 0 and 0 <= assessor.min_confidence <= 1
                and 0 <= assessor.max_confidence <= 1):
            raise ValueError("its thresholds are not non-negative distances and a confidence from 0 to 1")
        return assessor


def _finite(value: float) -> float | None:
    return None if value == float("inf") else float(value)


def _infinite(value) -> float:
    return float("inf") if value is None else float(value)
