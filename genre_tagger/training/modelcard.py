"""The model card: what the shipped models were trained on, how, and how well they do."""

from __future__ import annotations

from dataclasses import dataclass

from genre_tagger.models.bundle import library_versions
from genre_tagger.models.catalogue import SCORE_TIE, choose_default, selection_score
from genre_tagger.training.degrade import DEGRADATIONS


@dataclass
class ModelReport:
    """One column of the model card: a model, how it is made, its scores and data."""

    name: str
    description: str
    metrics: dict
    training: dict
    extractors: set[str]  # the feature extractors it reads


HEADLINE = [
    ("grouped_cv", "track_balanced_accuracy", "track bal. acc"),
    ("grouped_cv", "track_accuracy", "track acc"),
    ("grouped_cv", "track_macro_f1", "track macro-F1"),
    ("grouped_cv", "track_balanced_accuracy_soft", "track bal. acc, soft vote"),
    ("grouped_cv", "segment_accuracy", "segment acc"),
    ("nested_cv", "track_balanced_accuracy", "nested grouped CV: track bal. acc"),
    *[(f"robustness/{name}", "track_balanced_accuracy", f"test folds {name}: track bal. acc") for name in DEGRADATIONS],
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
    """``value ± spread`` of ``metrics[protocol][key]``; ``protocol`` may be a path ``a/b``."""
    scores = metrics
    for part in protocol.split("/"):
        scores = scores.get(part, {})
    value = scores.get(key)
    if value is None:
        return "-"
    std = scores.get(f"{key}_std")
    return f"{value:.3f} ± {std:.3f}" if std is not None else f"{value:.3f}"


def _nested_section(reports: list[ModelReport]) -> list[str]:
    lines = []
    for report in reports:
        nested = report.metrics.get("nested_cv")
        if not nested:
            continue
        grouped = report.metrics["grouped_cv"]["track_balanced_accuracy"]
        lines += [
            "",
            f"## Nested grouped CV of {report.name}",
            "",
            f"The same {nested['folds']} outer folds as the grouped CV. In each, every one of",
            f"{nested['configurations']} configurations of the levers is scored by a {nested['inner_folds']}-fold grouped",
            "CV of the outer training clips; the best is trained on them and tests the outer fold.",
            f"Track balanced accuracy **{nested['track_balanced_accuracy']:.3f} ± "
            f"{nested['track_balanced_accuracy_std']:.3f}**, against {grouped:.3f} for the shipped configuration",
            "scored on the same folds (whose levers were chosen on them).",
            "",
            "| outer fold | configuration chosen | inner score | outer score |",
            "|---|---|---|---|",
        ]
        lines += [f"| {i + 1} | {c['configuration']} | {c['inner_score']:.3f} | {score:.3f} |"
                  for i, (c, score) in enumerate(zip(nested["chosen"], nested["track_balanced_accuracy_folds"]))]
    return lines


def _data_section(training: dict, command: str, data_description: str) -> list[str]:
    return [
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
    ]


def _scores_section(reports: list[ModelReport]) -> list[str]:
    names = [r.name for r in reports]
    lines = [
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
        "*Test folds band-limited / as mp3*: the grouped CV's models scoring degraded copies",
        "of their test clips (resampled through 16 kHz; re-encoded as 32 kbit/s mono mp3),",
        "made in memory by `genre_tagger/training/degrade.py`. With augmentation, every training set",
        "(never a test fold) also holds those two copies of its clips.",
        "",
        "Every choice a model makes (KNN's k, the logistic regressions' C, the ensemble's",
        "weights) is made inside the training folds. Made once on these same clips, and so",
        "slightly optimistic: the hog-mel settings (`benchmarks/select_hog.py`), the",
        "`timbre-rhythm` feature set, and which levers are on by default (the ablation below).",
        "*Nested grouped CV* scores the default model without that last optimism: in each",
        "outer fold, its levers (extra features, augmentation, class weights, vote) are chosen",
        "by a grouped CV over the training clips alone (see below).",
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
    return lines


def _ablation_section(effects: list) -> list[str]:
    lines = [
        "",
        "## Ablation",
        "",
        "Each lever taken away in turn, the rest kept, over the same grouped-CV folds: track",
        "balanced accuracy with and without it, and the effect ± the spread of its per-fold",
        "values (paired: both runs test the same clips in each fold).",
        "",
        "| model | lever | with | without | effect |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {e.model} | {e.lever} | {e.with_lever:.3f} | {e.without_lever:.3f} | {e.delta:+.3f} ± {e.delta_std:.3f} |"
              for e in effects]
    return lines


def _default_section(reports: list[ModelReport]) -> list[str]:
    default = choose_default(
        {r.name: selection_score(r.metrics) for r in reports},
        {r.name: r.extractors for r in reports},
    )
    lines = [
        "",
        f"`scan` uses **{default}** by default. Models are compared by their grouped-CV track balanced",
        "accuracy averaged with their scores on the degraded test folds (robustness counts as",
        f"much as the clean score); of the models within {SCORE_TIE} of the best (a tie for one 5-fold",
        "CV), the one that reads the fewest feature extractors, i.e. the fastest to scan with.",
        "",
        "## Models",
        "",
    ]
    lines += [f"- `{r.name}` {r.description}" for r in reports]
    lines += ["", "Library versions: " + ", ".join(f"{k} {v}" for k, v in library_versions().items()), ""]
    return lines


def render(reports: list[ModelReport], command: str, data_description: str, effects: list | None = None) -> str:
    """Markdown model card for the models of ``reports``, trained by ``command``."""
    lines = _data_section(reports[0].training, command, data_description) + _scores_section(reports)
    if effects:
        lines += _ablation_section(effects)
    lines += _nested_section(reports)
    lines += _default_section(reports)
    return "\n".join(lines)
