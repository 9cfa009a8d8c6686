"""The model card: what the shipped models were trained on, how, and how well they do."""

from __future__ import annotations

from dataclasses import dataclass

from genre_tagger.bundle import library_versions


@dataclass
class ModelReport:
    """One column of the model card: a model, how it is made, its scores and data."""

    name: str
    description: str
    metrics: dict
    training: dict


HEADLINE = [
    ("grouped_cv", "track_balanced_accuracy", "track bal. acc"),
    ("grouped_cv", "track_accuracy", "track acc"),
    ("grouped_cv", "track_macro_f1", "track macro-F1"),
    ("grouped_cv", "track_balanced_accuracy_soft", "track bal. acc, soft vote"),
    ("grouped_cv", "segment_accuracy", "segment acc"),
    ("artist_split", "track_balanced_accuracy", "artist split: track bal. acc"),
    ("artist_split", "track_accuracy", "artist split: track acc"),
    ("leaky_random_split", "segment_accuracy", "leaky split: segment acc"),
]


def rounded(value):
    """``value`` with every float rounded to 3 decimals, for a readable card."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def score_cell(metrics: dict, protocol: str, key: str) -> str:
    value = metrics.get(protocol, {}).get(key)
    if value is None:
        return "-"
    std = metrics[protocol].get(f"{key}_std")
    return f"{value:.3f} ± {std:.3f}" if std is not None else f"{value:.3f}"


def render(reports: list[ModelReport], command: str, data_description: str) -> str:
    """Markdown model card for the models of ``reports``, trained by ``command``."""
    training = reports[0].training
    names = [r.name for r in reports]
    lines = [
        "# Model card: genre-tagger pretrained models",
        "",
        "Made by genre-tagger's own `retrain` command; regenerate them (and this card) with:",
        "",
        "```",
        command,
        "```",
        "",
        "## Data",
        "",
        data_description,
        "",
        f"- clips used: {training.get('n_clips')} ({training.get('failed_clips', 0)} failed to decode), "
        f"segments: {training.get('n_segments')} of 3 s, "
        f"exact duplicate feature rows dropped: {training.get('duplicate_rows_dropped', 0)}",
        "- clips per genre: " + ", ".join(f"{g} {n}" for g, n in training.get("clips_per_genre", {}).items()),
        "",
        "The classes are imbalanced (100 clips of blues, classical, jazz and rock, about 20 of",
        "each other genre). KNN divides each neighbour's vote by its class frequency; LightGBM",
        "and logistic regression weight each segment by the inverse frequency of its class",
        "(`class_weight=balanced`); model selection is scored with balanced accuracy.",
        "",
        "## Scores",
        "",
        "Track scores take the majority vote of a clip's 3-second segments (*soft vote*: the",
        "class of highest mean probability instead, `scan --vote soft`). *Grouped CV*: 5",
        "folds stratified by genre with all segments of a clip in one fold (scores of the pooled",
        "out-of-fold predictions ± their spread across folds). *Artist split*: the",
        "fault-filtered, artist-conscious split of Kereliuk, Sturm & Larsen (2015), train+valid",
        "vs test, only clips present. *Leaky split*: the original study's random 80/20 split of",
        "segments, which puts parts of one song on both sides; shown only to compare with its",
        "figures (KNN 0.90, LightGBM 0.91) and not a measure of how the models do on new music.",
        "",
        "Every choice a model makes (KNN's k, hog-logreg's C, the ensemble's weights) is made",
        "inside the training folds. The hog-mel settings (mel bands, cell size, orientations)",
        "were chosen once by grouped CV on these same clips (`benchmarks/select_hog.py`), so",
        "hog-logreg's and the ensemble's scores are slightly optimistic.",
        "",
        "| score | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for protocol, key, label in HEADLINE:
        lines.append(f"| {label} | " + " | ".join(score_cell(r.metrics, protocol, key) for r in reports) + " |")
    lines += ["", "Per-class recall (tracks, grouped CV):", ""]
    lines.append("| genre | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for genre in sorted(reports[0].metrics.get("grouped_cv", {}).get("track_recall", {})):
        cells = [f"{r.metrics.get('grouped_cv', {}).get('track_recall', {}).get(genre, float('nan')):.2f}" for r in reports]
        lines.append(f"| {genre} | " + " | ".join(cells) + " |")
    best = max(reports, key=lambda r: r.metrics.get("grouped_cv", {}).get("track_balanced_accuracy", 0))
    lines += [
        "",
        f"`scan` uses **{best.name}** by default: the best grouped-CV track balanced accuracy.",
        "",
        "## Models",
        "",
    ]
    lines += [f"- `{r.name}` {r.description}" for r in reports]
    lines += ["", "Library versions: " + ", ".join(f"{k} {v}" for k, v in library_versions().items()), ""]
    return "\n".join(lines)
