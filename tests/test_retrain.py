"""`retrain` on real GTZAN clips, and the models shipped in pretrained/."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from genre_tagger.models import bundle, catalogue
from genre_tagger.cli import main
from genre_tagger.training.clips import read_split_dir
from genre_tagger.plugins import registry

GENRES = ("classical", "metal", "rock")


@pytest.fixture(scope="module")
def small_gtzan(gtzan_dir, tmp_path_factory):
    """6 clips of 3 genres, linked (not copied) from ../shared/data/gtzan, plus a corrupt clip."""
    root = tmp_path_factory.mktemp("gtzan") / "genres_original"
    splits = read_split_dir(gtzan_dir / "splits")
    for genre in GENRES:
        (root / genre).mkdir(parents=True)
        available = sorted((gtzan_dir / "genres" / genre).glob("*.ogg"))
        training = [p for p in available if p.stem in splits["train"] | splits["valid"]][:4]
        testing = [p for p in available if p.stem in splits["test"]][:2]
        for clip in training + testing:
            os.symlink(clip, root / genre / clip.name)
    (root / "rock" / "rock.99999.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt corrupt")
    return root


def test_retrain_reports_three_scorings_and_saves_pickle_free_bundles(small_gtzan, gtzan_dir, tmp_path, monkeypatch):
    out = tmp_path / "models"
    cache = tmp_path / "cache.sqlite"
    args = ["retrain", "--data", str(small_gtzan.parent), "--out", str(out), "--split-dir", str(gtzan_dir / "splits"),
            "--models", "knn,lightgbm", "--cache", str(cache)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "rock.99999.wav" in result.output  # the corrupt clip is reported and skipped
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("knn", "lightgbm", "ensemble"):
        scores = metrics[name]["metrics"]
        cv = scores["grouped_cv"]
        assert cv["n_tracks"] == 18 and 0 <= cv["track_balanced_accuracy"] <= 1
        assert set(cv["track_recall"]) == set(GENRES)
        assert "track_balanced_accuracy_std" in cv
        assert scores["artist_split"]["n_tracks"] > 0
    for name in ("knn", "lightgbm", "ensemble"):  # robustness: the same CV with degraded test folds
        robustness = metrics[name]["metrics"]["robustness"]
        assert set(robustness) == {"band-limited-16k", "mp3-32k", "loud-master"}
        assert all(scores["n_tracks"] == 18 for scores in robustness.values())
    assert metrics["knn"]["training"]["augmentation"] == ["band-limited-16k", "mp3-32k", "loud-master"]
    levers = {(row["model"], row["lever"].split(":")[0]) for row in metrics["ablation"]}
    assert {("knn", "augmentation"), ("lightgbm", "augmentation"), ("lightgbm", "balanced class weights"),
            ("knn", "soft vote instead of majority")} <= levers
    assert any(model == "ensemble" for model, _ in levers)
    for row in metrics["ablation"]:
        assert row["delta"] == pytest.approx(row["with"] - row["without"]) and row["delta_std"] >= 0
    assert metrics["knn"]["metrics"]["leaky_random_split"]["leaky"] is True
    assert metrics["knn"]["training"]["clips_per_genre"] == {g: 6 for g in GENRES}
    assert any("rock.99999.wav" in failure for failure in metrics["failures"])
    card = (out / "README.md").read_text()
    nested = [name for name in ("knn", "lightgbm") if "nested_cv" in metrics[name]["metrics"]]
    assert len(nested) == 1  # the model scan defaults to among them, levers chosen inside each outer fold
    scores = metrics[nested[0]]["metrics"]["nested_cv"]
    assert 0 <= scores["track_balanced_accuracy"] <= 1 and len(scores["chosen"]) == scores["folds"]
    assert f"## Nested grouped CV of {nested[0]}" in card
    assert bundle.load(out / nested[0], registry()).metrics["nested_cv"] == scores
    assert "Grouped CV" in card and "genre-tagger retrain" in card and "leaky" in card.lower()
    assert "## Ablation" in card and "| lightgbm | balanced class weights |" in card
    assert "Ablation" in result.output
    for name in ("knn", "lightgbm"):
        assert not list((out / name).glob("*.pkl"))
        assert bundle.load(out / name, registry()).classes.tolist() == list(GENRES)

    # a second retrain decodes nothing but the clip that failed: the rest comes from the cache
    import genre_tagger.training.dataset as training

    decoded = []

    def recording(paths, *args, **kwargs):
        paths = list(paths)
        decoded.extend(paths)
        return real_analyse_many(paths, *args, **kwargs)

    real_analyse_many = training.analyse_many
    monkeypatch.setattr(training, "analyse_many", recording)
    again = CliRunner().invoke(main, args[:-4] + ["--models", "knn", "--cache", str(cache)])
    assert again.exit_code == 0, again.output
    assert {p.name for p in decoded} == {"rock.99999.wav"}  # tried for the clean and each degraded copy


def test_a_split_that_names_no_test_clip_is_a_clear_error(small_gtzan, tmp_path):
    """--split-dir on a subset of GTZAN whose clips are all on one side: one line that counts
    both sides right, exit code 2, never a traceback (#24)."""
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    clips = sorted(p.stem for p in small_gtzan.rglob("*.ogg"))
    (split_dir / "train_filtered.txt").write_text("".join(f"{c.split('.')[0]}/{c}.wav\n" for c in clips[:10]))
    (split_dir / "valid_filtered.txt").write_text("".join(f"{c.split('.')[0]}/{c}.wav\n" for c in clips[10:13]))
    (split_dir / "test_filtered.txt").write_text("blues/blues.00099.wav\n")
    result = CliRunner().invoke(main, ["retrain", "--data", str(small_gtzan.parent), "--out", str(tmp_path / "m"),
                                       "--split-dir", str(split_dir), "--models", "knn", "--no-ablation",
                                       "--no-nested", "--cache", str(tmp_path / "c.sqlite")])
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "name 13 of the" in message and "clips found for training (train/valid) and 0 for testing" in message, message


def test_scan_with_models_retrained_from_real_clips(small_gtzan, gtzan_dir, tmp_path):
    out = tmp_path / "models"
    runner = CliRunner()
    assert runner.invoke(main, ["retrain", "--data", str(small_gtzan), "--out", str(out), "--models", "knn",
                                "--cache", str(tmp_path / "c.sqlite")]).exit_code == 0
    report = tmp_path / "r.csv"
    clip = next((gtzan_dir / "genres" / "classical").glob("*.ogg"))
    result = runner.invoke(main, ["scan", str(clip), "--models-dir", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "classical" in report.read_text()


def test_shipped_models_load_and_match_the_installed_features():
    models_dir = catalogue.default_models_dir()
    names = catalogue.available(models_dir)
    assert {"knn", "lightgbm", "lightgbm-plus", "logreg", "musicnn-logreg", "hog-logreg", "ensemble"} <= set(names), f"pretrained/ holds only {names}"
    plugins = registry()
    for name in names:
        loaded = catalogue.load(models_dir / name, plugins)  # refuses stale feature versions
        assert len(loaded.classes) == 10
        assert loaded.metrics["grouped_cv"]["n_tracks"] >= 500
        rows = {e: np.zeros((2, len(plugins.feature_extractor(e).feature_names))) for e in loaded.extractors}
        proba = loaded.predict_proba(rows)
        assert proba.shape == (2, 10) and np.allclose(proba.sum(axis=1), 1)
    size = sum(p.stat().st_size for p in (models_dir / "hog-logreg").iterdir())
    assert size <= 20 * 2**20
    assert catalogue.best_model(models_dir) in names
    card = (models_dir / "README.md").read_text()
    for name in ("knn", "lightgbm", "lightgbm-plus", "logreg", "musicnn-logreg", "hog-logreg", "ensemble"):
        assert f"| {name}" in card or f" {name} |" in card
    assert "test folds mp3-32k" in card and "unseen source" in card
    # the ablation is in the card exactly when the command that made it ran one
    assert ("## Ablation" in card) == ("--no-ablation" not in card.split("```")[1])


def test_the_shipped_default_model_meets_the_accuracy_goals_without_leakage():
    """The shipped default's goals (#8's, #31's), on the scores its own retrain recorded.
    #31's unseen-source goal (0.75 on Emotify by a model that never saw it) is not met:
    the README says so, and this holds what was reached, so that it cannot fall back."""
    models_dir = catalogue.default_models_dir()
    name = catalogue.best_model(models_dir)
    metrics = bundle.read_metadata(models_dir / name)["metrics"]
    clean = metrics["grouped_cv"]["track_balanced_accuracy"]
    assert clean >= 0.85
    if "nested_cv" in metrics:  # levers chosen inside each outer fold (the shipped run may skip it: README)
        assert metrics["nested_cv"]["track_balanced_accuracy"] >= 0.85
    assert metrics["artist_split"]["track_balanced_accuracy"] >= 0.78
    assert metrics["unseen_source"]["track_balanced_accuracy"] >= 0.5
    rates = metrics["assessment"]["rates"]
    assert rates["cross"]["other_genres_untagged"] >= 0.6  # Emotify's electronic, by thresholds that never saw it
    assert rates["cross"]["known_tagged"] >= 0.75
    assert rates["train"]["known_tagged"] >= 0.75 and rates["train"]["tags_right"] >= 0.9  # in-source
    for source in ("degraded:band-limited-16k", "degraded:mp3-32k", "degraded:loud-master"):
        # the refusal judges the genre, not the chain
        assert rates[source]["known_tagged"] >= rates["train"]["known_tagged"] - 0.05
        assert rates[source]["tags_right"] >= 0.9
    assert set(metrics["robustness"]) == {"band-limited-16k", "mp3-32k", "loud-master"}
    for degraded in metrics["robustness"].values():  # close to the clean score
        assert degraded["track_balanced_accuracy"] >= clean - 0.04


@pytest.mark.parametrize("source, extra, said", [
    ("--data", ["--min-tracks", "3"], "--min-tracks and --alias are for your own genres"),
    ("--from-tags", ["--split-dir", "."], "--split-dir names GTZAN's artist-filtered split: only with --data"),
])
def test_options_of_another_source_are_usage_errors(tmp_path, source, extra, said):
    """An option that would do nothing with the source given is said, not ignored."""
    result = CliRunner().invoke(main, ["retrain", source, str(tmp_path), "--out", str(tmp_path / "m"), *extra])
    assert result.exit_code == 2 and said in result.output, result.output
    assert not (tmp_path / "m").exists()
