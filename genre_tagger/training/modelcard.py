"""The model card: what the shipped models were trained on, how, and how well they do."""

from __future__ import annotations

from dataclasses import dataclass

from genre_tagger.models.bundle import library_versions
from genre_tagger.models.catalogue import SCORE_TIE, choose_default, selection_score
from genre_tagger.training.degrade import DEGRADATIONS, DESCRIPTIONS


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
    ("unseen_source", "track_balanced_accuracy", "unseen source (other music, its source never trained on): track bal. acc"),
    ("cross_dataset", "track_balanced_accuracy", "other music, grouped CV over its clips: track bal. acc (in-source when trained on)"),
    ("grouped_cv", "track_accuracy", "track acc"),
    ("grouped_cv", "track_macro_f1", "track macro-F1"),
    ("grouped_cv", "track_balanced_accuracy_soft", "track bal. acc, soft vote"),
    ("grouped_cv", "segment_accuracy", "segment acc"),
    ("nested_cv", "track_balanced_accuracy", "nested grouped CV: track bal. acc"),
    *[(f"robustness/{name}", "track_balanced_accuracy", f"test folds {name}: track bal. acc") for name in DEGRADATIONS],
    ("artist_split", "track_balanced_accuracy", "artist split: track bal. acc"),
    ("artist_split", "track_accuracy", "artist split: track acc"),
    ("leaky_random_split", "segment_accuracy", "leaky split: segment acc"),
    ("assessment/calibration/by_source/train", "ece", "confidence ECE, grouped CV"),
    ("assessment/calibration/by_source/cross", "ece", "confidence ECE, unseen source"),
    ("assessment/rates/cross", "known_tagged", "unseen source: share of known genres tagged"),
    ("assessment/rates/cross", "tags_right", "unseen source: tags right"),
    ("assessment/rates/cross", "other_genres_untagged", "unseen source: unknown genres left untagged"),
    *[(f"assessment/rates/degraded:{name}", "known_tagged", f"test folds {name}: share tagged") for name in DEGRADATIONS],
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


def score_rows(reports: list[ModelReport]) -> list[tuple[str, list[str]]]:
    """The rows of :data:`HEADLINE` that some report has, as ``(label, a cell per report)``:
    a scoring that was not run (no artist split for a user's genres, no nested CV) has no row."""
    rows = [(label, [score_cell(r.metrics, protocol, key) for r in reports]) for protocol, key, label in HEADLINE]
    return [(label, cells) for label, cells in rows if any(cell != "-" for cell in cells)]


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


def _reads(reports: list[ModelReport], extractor: str) -> bool:
    return any(extractor in r.extractors for r in reports)


def _has(reports: list[ModelReport], name_part: str) -> bool:
    return any(name_part in r.name for r in reports)


def _weighting_sentence(reports: list[ModelReport]) -> str:
    """How the models of ``reports`` weigh the classes, naming only those trained."""
    parts = []
    if _has(reports, "knn"):
        parts.append("KNN divides each neighbour's vote by its class frequency")
    others = [label for part, label in (("lightgbm", "LightGBM"), ("logreg", "logistic regression")) if _has(reports, part)]
    if others:
        parts.append(f"{' and '.join(others)} weight each segment by the inverse frequency of its class "
                     "(`class_weight=balanced`)")
    return "; ".join(parts + ["model selection is scored with balanced accuracy"]) + "."


def _data_section(reports: list[ModelReport], command: str, data_description: str) -> list[str]:
    training = reports[0].training
    return [
        "# Model card: genre-tagger models",
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
        balance_sentence(training.get("clips_per_genre", {})) + " " + _weighting_sentence(reports),
        "",
    ]


def balance_sentence(clips_per_genre: dict[str, int]) -> str:
    """What the clip counts of the training data say about its balance, from the counts."""
    if not clips_per_genre:
        return "The clips per genre were not recorded."
    counts = sorted(clips_per_genre.items(), key=lambda item: (-item[1], item[0]))
    (_, most), (_, fewest) = counts[0], counts[-1]
    if most == fewest:
        return f"The classes are balanced ({most} clips each)."
    largest = [g for g, n in counts if n == most]
    smallest = [g for g, n in counts if n == fewest]
    return (f"The classes are {'imbalanced' if most >= 1.5 * fewest else 'nearly balanced'}: {most} clips of "
            f"{', '.join(largest)}, {fewest} of {', '.join(smallest)}.")


def _protocols_paragraphs(reports: list[ModelReport], ablated: bool = False) -> list[str]:
    """What each scoring in the table is, for the scorings that were run (``ablated``: the
    card has an ablation table)."""
    training = reports[0].training
    unit = "all tracks of an album (album tag, else folder)" if training.get("grouped_by") == "album" else \
        "all segments of a clip"
    lines = [
        "Track scores take the majority vote of a clip's 3-second segments (*soft vote*: the",
        "class of highest mean probability instead, `scan --vote soft`). *Grouped CV*: 5",
        f"folds stratified by genre with {unit} in one fold (scores of the pooled",
        "out-of-fold predictions ± their spread across folds).",
    ]
    if any(r.metrics.get("artist_split") for r in reports):
        lines += ["*Artist split*: the fault-filtered, artist-conscious split of Kereliuk, Sturm & Larsen",
                  "(2015), train+valid vs test, only clips present."]
    if any(r.metrics.get("leaky_random_split") for r in reports):
        study = "" if training.get("grouped_by") == "album" else \
            ", as the original GTZAN study did (its figures: KNN 0.90, LightGBM 0.91)"
        lines += [f"*Leaky split*: a random 80/20 split of segments, which puts parts of one song on both sides{study};",
                  "shown only to compare, not a measure of how the models do on new music."]
    degraded = sorted({name for r in reports for name in r.metrics.get("robustness", {})})
    augmented = sorted({name for r in reports for name in r.training.get("augmentation", [])})
    if degraded:
        lines += ["", "*Test folds degraded*: the grouped CV's models scoring copies of their test clips, made in",
                  "memory by `genre_tagger/training/degrade.py`: "
                  + "; ".join(f"*{name}*, {DESCRIPTIONS.get(name, name)}" for name in degraded) + "."]
    if augmented:
        lines += ["", "With augmentation, every training set (never a test fold) also holds these copies of its",
                  "clips: " + ", ".join(augmented) + "."]
    settings = ["the logistic regressions' C" if _has(reports, "logreg") else None, "KNN's k" if _has(reports, "knn") else None]
    if training.get("grouped_by") == "album":  # a user's own genres (see retrain._with_shipped_choices)
        if any(settings):
            lines += ["", "Their settings (" + ", ".join(s for s in settings if s) + ") are those the models of the",
                      "same names that genre-tagger ships chose on GTZAN, not chosen again on these tracks."]
        return lines
    chosen = [*settings,
              "the ensemble's weights" if _has(reports, "ensemble") else None]
    once = ["the hog-mel settings (`benchmarks/select_hog.py`)" if _reads(reports, "hog-mel") else None,
            "the `timbre-rhythm` feature set" if _reads(reports, "timbre-rhythm") else None,
            "which levers are on by default" + (" (the ablation below)" if ablated else "")]
    lines += ["", "Every choice a model makes (" + ", ".join(c for c in chosen if c) + ") is made inside the",
              "training folds. Made once on these same clips, and so slightly optimistic: "
              + ", ".join(c for c in once if c) + "."]
    if any(r.metrics.get("nested_cv") for r in reports):
        lines += ["*Nested grouped CV* scores the default model without that last optimism: in each outer fold,",
                  "its levers (extra features, augmentation, class weights, vote) are chosen by a grouped CV over",
                  "the training clips alone (see below)."]
    return lines


def _scores_section(reports: list[ModelReport], ablated: bool = False) -> list[str]:
    names = [r.name for r in reports]
    lines = ["## Scores", "", *_protocols_paragraphs(reports, ablated), "",
             "| score | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in score_rows(reports)]
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
        "| model | lever | with | without | effect | other music: with / without (effect) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {e.model} | {e.lever} | {e.with_lever:.3f} | {e.without_lever:.3f} | {e.delta:+.3f} ± {e.delta_std:.3f} | "
              + ("-" if e.cross_delta is None else f"{e.cross_with:.3f} / {e.cross_without:.3f} ({e.cross_delta:+.3f})") + " |"
              for e in effects]
    return lines


def _cross_section(reports: list[ModelReport]) -> list[str]:
    cross = [r for r in reports if r.metrics.get("cross_dataset")]
    if not cross:
        return []
    first = cross[0].metrics["cross_dataset"]
    training = cross[0].training
    trained_on = training.get("cross_clips_trained_on")
    lines = [
        "",
        "## Other music",
        "",
        f"Beside the training folder, every model is scored on the labelled clips of `{training.get('cross_labels')}`",
        f"(genres shared with the training folder: {', '.join(first.get('genres', []))}). Its clips are dealt to the",
        "grouped CV's folds too: in each fold the model "
        + ("trains on the other folds' clips of those genres" if trained_on else "never trains on any of them")
        + " and is scored on this fold's, so every",
        "figure here is of clips the model did not train on. Clips are grouped by file only (the data says nothing",
        "of their artists).",
    ]
    if trained_on:
        lines += ["", f"Trained on: {', '.join(f'{g} {n}' for g, n in trained_on['clips_per_genre'].items())} clips, "
                      "each genre's rows counting "
                      + ", ".join(f"{g} {n} times" for g, n in trained_on['weight'].items())
                      + " (about as much as the training folder's rows of that genre)."]
    lines += ["", "Per-class recall (tracks of other music):", "", "| genre | " + " | ".join(r.name for r in cross) + " |",
              "|---|" + "---|" * len(cross)]
    for genre in first.get("genres", []):
        lines.append(f"| {genre} | " + " | ".join(f"{r.metrics['cross_dataset']['track_recall'].get(genre, 0):.2f}"
                                                  for r in cross) + " |")
    for genre, predicted in first.get("outside_genres", {}).items():
        lines += ["", f"`{genre}` (no training genre) was voted, by {cross[0].name}: "
                      + ", ".join(f"{g} {n}" for g, n in sorted(predicted.items(), key=lambda kv: -kv[1]))]
    return lines


def _assessment_section(report: ModelReport | None) -> list[str]:
    assessment = (report.metrics.get("assessment") if report else None) or {}
    if not assessment:
        return []
    calibration, thresholds = assessment["calibration"], assessment["thresholds"]
    copies = any(s.startswith("degraded:") for s in assessment["rates"])
    lines = [
        "",
        f"## Confidence and unknown tracks ({report.name})",
        "",
        "A track's confidence is the probability that its genre is right: the mean probability of the voted genre",
        f"mapped by a calibrator fitted on out-of-fold tracks ({calibration['shipped']}; isotonic and Platt were both",
        "measured with each fold's calibrator fitted on the other folds, and the one of lower mean ECE is shipped:",
        "a choice made on these folds; other music's tracks are predicted by a model that never saw their source).",
        "A track is uncertain, never tagged, when it is not music (Mahalanobis distance over all the model's columns,",
        "fitted on the training clips" + (" and their degraded copies" if copies else "") + ", above"
        f" {thresholds['not_music']:.2f}, 1 = the median of known music: 1.5 times the farthest training clip"
        + (" or copy" if copies else "") + f"), outside the known genres ("
        + ("the largest probability musicnn's tag layer gives a genre the model lacks, electronic, ambient, ...,"
           if assessment.get("outside_evidence") == "tags" else "Mahalanobis distance over all columns,")
        + f" above {thresholds['outside']:.2f} times its median over known music: a quantile of the training folder's",
        "tracks" + (" and their copies" if copies else "")
        + f", no clip of another genre chose it), or when its confidence is below {thresholds['min_confidence']:.2f}.",
        f"These figures rest on {assessment.get('tracks_measured', '?')} held-out tracks of known genres, so no confidence"
        f" claims more than {thresholds.get('max_confidence', 1.0):.3f} (1 - 3/n, the 95 % bound of an accuracy"
        " measured on n tracks all right).",
        "The confidence threshold tags the most known-genre clips "
        + ("of the unseen source" if "cross" in assessment["rates"] else "of the training folder")
        + " rightly with at least 75 % of them tagged"
        + (", preferring thresholds that tag each degraded copy of the test folds within 5 points of the clean clips"
           if copies else "") + " (chosen on the clips reported: optimistic).",
        "",
        "| measured on | tracks | ECE | known genres tagged | tags right | other genres left untagged |",
        "|---|---|---|---|---|---|",
    ]
    sources = [("train", "training folder (grouped CV, in-source)"), ("cross", "other music (unseen source)")]
    sources += [(s, f"training folder, test folds {s.split(':', 1)[1]}") for s in assessment["rates"] if s.startswith("degraded:")]
    for source, label in sources:
        by_source = calibration["by_source"].get(source)
        rates = assessment["rates"].get(source)
        if not by_source or not rates:
            continue
        untagged = rates.get("other_genres_untagged")
        lines.append(f"| {label} | {by_source['tracks']} | {by_source['ece']:.3f} | {rates['known_tagged']:.2f} | "
                     f"{rates['tags_right']:.2f} | {'-' if untagged is None else f'{untagged:.2f}'} |")
    if "outside_auroc" in assessment:
        lines += ["", f"Outside-genre evidence separates the unseen source's unknown genres from its known ones with AUROC "
                      f"{assessment['outside_auroc']:.3f}."]
    for source, label in (("train", "training folder"), ("cross", "other music")):
        bins = calibration["by_source"].get(source, {}).get("reliability")
        if bins:
            lines += ["", f"Reliability, {label}: " + "; ".join(
                f"{b['low']:.1f}-{b['high']:.1f}: {b['tracks']} tracks, confidence {b['confidence']:.2f}, right "
                f"{b['accuracy']:.2f}" for b in bins)]
    for source, label in (("train", "training folder"), ("cross", "other music")):
        rows = assessment.get("risk_coverage", {}).get(source)
        if rows:
            lines += ["", f"Risk-coverage, {label} (accuracy of the most confident share): " + ", ".join(
                f"{r['coverage']:.0%} {r['accuracy']:.2f}" for r in rows)]
    return lines


def _default_section(reports: list[ModelReport]) -> list[str]:
    default = choose_default(
        {r.name: selection_score(r.metrics) for r in reports},
        {r.name: r.extractors for r in reports},
    )
    rule = "their grouped-CV track balanced accuracy"
    if any(r.metrics.get("robustness") for r in reports):
        rule += " averaged with their scores on the degraded test folds (robustness counts as much as the clean score)"
    if any(r.metrics.get("unseen_source") for r in reports):
        rule += (", that averaged with their score on other music by models that never saw its source (the unseen"
                 " source counts as much as the training folder)")
    lines = [
        "",
        f"`scan` uses **{default}** by default. Models are compared by {rule}; of the models within",
        f"{SCORE_TIE} of the best (a tie for one 5-fold CV), the one that reads the fewest feature extractors,",
        "i.e. the fastest to scan with.",
        "",
        "## Models",
        "",
    ]
    lines += [f"- `{r.name}` {r.description}" for r in reports]
    lines += ["", "Library versions: " + ", ".join(f"{k} {v}" for k, v in library_versions().items()), ""]
    return lines


def render(reports: list[ModelReport], command: str, data_description: str, effects: list | None = None) -> str:
    """Markdown model card for the models of ``reports``, trained by ``command``."""
    lines = _data_section(reports, command, data_description) + _scores_section(reports, ablated=bool(effects))
    lines += _cross_section(reports)
    if effects:
        lines += _ablation_section(effects)
    lines += _nested_section(reports)
    default = choose_default({r.name: selection_score(r.metrics) for r in reports}, {r.name: r.extractors for r in reports})
    lines += _assessment_section(next((r for r in reports if r.name == default), None))
    lines += _default_section(reports)
    return "\n".join(lines)
