"""`genre-tagger evaluate`: labels CSV parsing, genre-name normalisation, scores, and the
command end to end on a small imbalanced collection scored by models retrained on
generated audio (``tiny_models``)."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import string
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_fscore_support

import audiofactory
from genre_tagger.cli import main
from genre_tagger.evaluation.priors import shift_priors
from genre_tagger.evaluation.scores import bootstrap_balanced_accuracy, score
from genre_tagger.evaluation.labels import (
    BUILTIN_ALIASES,
    LabelsError,
    build_aliases,
    normalise_genre,
    parse_aliases,
    parse_labels,
    read_labels,
)


def run(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# ---------------------------------------------------------------- labels CSV


@pytest.mark.parametrize(
    "text, path_column, genre_column",
    [
        ("path,genre\na.mp3,Rock\n", "path", "genre"),
        ("File,Label\na.mp3,Rock\n", "File", "Label"),
        ("Artist,File Name,Class\nX,a.mp3,Rock\n", "File Name", "Class"),
        ("LOCATION;TAG\na.mp3;Rock\n", "LOCATION", "TAG"),
        ("genre\tfilename\nRock\ta.mp3\n", "filename", "genre"),
        ("\ufeffpath,genre\r\na.mp3,Rock\r\n", "path", "genre"),  # BOM, CRLF
        ("a.mp3,Rock\n", "1", "2"),  # no header: the cell naming an audio file is the path
        ("Rock;a.mp3\n", "2", "1"),
    ],
)
def test_columns_are_found_by_header_or_content(text, path_column, genre_column):
    labels = parse_labels(text, "/music/labels.csv")
    assert (labels.path_column, labels.genre_column) == (path_column, genre_column)
    assert [(t.path, t.label, t.raw_label) for t in labels.tracks] == [(Path("/music/a.mp3"), "rock", "Rock")]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters_and_quoted_paths(delimiter):
    text = f'path{delimiter}genre\n"Artist, The; Live\tSet/01 a.flac"{delimiter}"Hip Hop"\nb.ogg{delimiter}jazz\n'
    labels = parse_labels(text, "/m/l.csv")
    assert labels.delimiter == delimiter
    assert [t.path for t in labels.tracks] == [Path("/m/Artist, The; Live\tSet/01 a.flac"), Path("/m/b.ogg")]
    assert [t.label for t in labels.tracks] == ["hiphop", "jazz"]
    assert [t.line for t in labels.tracks] == [2, 3]


def test_relative_paths_follow_the_csv_or_root(tmp_path):
    csv_file = tmp_path / "lists" / "mine.csv"
    csv_file.parent.mkdir()
    csv_file.write_text("path,genre\nsub/a.mp3,rock\n/abs/b.mp3,pop\n", encoding="utf-8")
    assert [t.path for t in read_labels(csv_file).tracks] == [tmp_path / "lists" / "sub" / "a.mp3", Path("/abs/b.mp3")]
    assert [t.path for t in read_labels(csv_file, root=tmp_path).tracks] == [tmp_path / "sub" / "a.mp3", Path("/abs/b.mp3")]


def test_bad_rows_are_skipped_and_listed():
    labels = parse_labels("path,genre\na.mp3,rock\n,pop\nb.mp3,\n\na.mp3,jazz\nc.mp3,--\n", "/m/l.csv")
    assert [t.path.name for t in labels.tracks] == ["a.mp3"]
    assert labels.skipped == [
        "/m/l.csv:3: no path, row skipped",
        "/m/l.csv:4: no genre, row skipped",
        "/m/l.csv:6: /m/a.mp3 already labelled on line 2, row skipped",
        "/m/l.csv:7: no genre, row skipped",
    ]


@pytest.mark.parametrize("text", ["track,style\na.mp3,rock\n", "", "path,genre\n", "a,b,c\n"])
def test_unusable_files_give_one_line_errors_naming_the_file(text):
    with pytest.raises(LabelsError) as error:
        parse_labels(text, "/m/mine.csv")
    assert str(error.value).startswith("/m/mine.csv: ") and "\n" not in str(error.value)


def test_non_utf8_file_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("path,genre\nà.mp3,rock\n".encode("utf-16"))
    with pytest.raises(LabelsError, match="latin1.csv: not UTF-8"):
        read_labels(path)


# ---------------------------------------------------------------- genre names


@pytest.mark.parametrize("name", ["Hip Hop", "hip-hop", "HipHop", "Hip-Hop ", "HIP_HOP", "hip–hop", "Hip—Hop", " hip.hop!"])
def test_spellings_of_hip_hop(name):
    assert normalise_genre(name) == "hiphop"


@pytest.mark.parametrize(
    "name, label",
    [("R&B", "rnb"), ("RnB", "rnb"), ("Rhythm & Blues", "rnb"), ("Drum'n'Bass", "drumandbass"), ("DnB", "drumandbass"),
     ("Électro", "electro"), ("Ｒｏｃｋ", "rock"), ("rap", "rap"), ("Heavy Metal", "heavymetal")],
)
def test_builtin_aliases_are_spelling_only(name, label):
    assert normalise_genre(name) == label


def test_user_aliases_extend_and_chain():
    aliases = build_aliases(parse_aliases("# mine\nrap = hiphop\nGangsta Rap=rap\n"))
    assert normalise_genre("Rap", aliases) == normalise_genre("gangsta-rap", aliases) == "hiphop"
    assert normalise_genre("R&B", aliases) == "rnb"  # the built-in ones stay
    assert parse_aliases("name,label\nrap,Hip Hop\n") == {"rap": "Hip Hop"}
    assert parse_aliases("rap;hiphop\n") == {"rap": "hiphop"}
    with pytest.raises(ValueError, match="cycle"):
        build_aliases({"a": "b", "b": "a"})
    with pytest.raises(LabelsError, match="aliases.txt:1"):
        parse_aliases("just one cell\n", "aliases.txt")


def test_alias_file_on_the_command_line(tmp_path, tiny_models):
    (tmp_path / "labels.csv").write_text("path,genre\nnothing.wav,Heavy Metal\n")
    (tmp_path / "aliases.txt").write_text("heavy metal=metal\n")
    result = run("evaluate", "--labels", tmp_path / "labels.csv", "--alias", tmp_path / "aliases.txt",
                 "--models-dir", tiny_models, "--model", "knn", "--json", tmp_path / "out.json")
    assert result.exit_code == 1  # the file is missing
    assert json.loads((tmp_path / "out.json").read_text())["label_distribution"] == {"metal": 1}


@given(st.text())
def test_normalising_is_idempotent(name):
    once = normalise_genre(name)
    assert normalise_genre(once) == once
    assert all(ch.isalnum() for ch in once)


ascii_words = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=12)
separators = st.text(alphabet=" \t-_./,;:!?'\"()[]‐‑–—", max_size=3)


@settings(max_examples=200)
@given(st.lists(ascii_words, min_size=1, max_size=4), st.lists(separators, min_size=5, max_size=5))
def test_case_spaces_and_punctuation_do_not_matter(words, seps):
    plain = "".join(words)
    decorated = seps[0] + "".join(w + s for w, s in zip(words, seps[1:] + [""] * len(words)))
    assert normalise_genre(decorated) == normalise_genre(plain.upper()) == normalise_genre(plain.lower())


def test_builtin_aliases_are_canonical():
    assert all(normalise_genre(v) == v and v not in BUILTIN_ALIASES for v in BUILTIN_ALIASES.values())


# ---------------------------------------------------------------- scores


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_scores_match_scikit_learn():
    classes = ["blues", "jazz", "metal", "rock"]
    y_true = ["jazz"] * 6 + ["metal"] * 3 + ["rock"] * 1
    y_pred = ["jazz"] * 4 + ["blues", "metal"] + ["metal"] * 2 + ["jazz"] + ["rock"]
    scores = score(y_true, y_pred, classes)
    assert scores.accuracy == pytest.approx(0.7)
    assert scores.balanced_accuracy == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    present = ["jazz", "metal", "rock"]
    assert scores.macro_f1 == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    for i, genre in enumerate(present):
        row = scores.per_class[genre]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i]))
    assert scores.per_class["blues"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    assert scores.confusion_labels == ["blues", "jazz", "metal", "rock"]  # labelled or predicted, model order
    assert scores.confusion == [[0, 0, 0, 0], [1, 4, 1, 0], [0, 1, 2, 0], [0, 0, 0, 1]]
    low, high = scores.balanced_accuracy_ci95
    assert 0 <= low <= scores.balanced_accuracy <= high <= 1


def test_bootstrap_is_deterministic_and_exact_when_perfect():
    true, pred = np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 1, 0])
    assert bootstrap_balanced_accuracy(true, pred, 3) == bootstrap_balanced_accuracy(true, pred, 3)
    assert bootstrap_balanced_accuracy(true, true, 3) == (1.0, 1.0)


def test_prior_shift_moves_close_calls_towards_the_common_genre():
    proba = np.array([[0.6, 0.4], [0.9, 0.1]])
    shifted = shift_priors(proba, train_prior=np.array([0.5, 0.5]), new_prior=np.array([0.2, 0.8]))
    assert shifted.sum(axis=1) == pytest.approx([1, 1])
    assert shifted.argmax(axis=1).tolist() == [1, 0]  # 0.6*0.2 < 0.4*0.8; 0.9*0.2 > 0.1*0.8
    assert shift_priors(proba, np.array([0.3, 0.7]), np.array([0.3, 0.7])) == pytest.approx(proba)


# ---------------------------------------------------------------- the command end to end


def _metal(seed: int) -> np.ndarray:
    return (audiofactory.noise(7, seed=seed, amplitude=0.3) + audiofactory.clicks(7, bpm=130 + 7 * seed)).clip(-1, 1)


def _classical(i: int) -> np.ndarray:
    return audiofactory.tone(7, freq=250 + 60 * i) + audiofactory.tone(7, freq=390 + 60 * i, amplitude=0.1)


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """5 metal + 2 classical files labelled with varied spellings, 1 'polka' (outside the
    models' classes), 1 missing, 1 broken and 1 silent file; the labels CSV is ``labels.csv``."""
    root = tmp_path_factory.mktemp("collection")
    (root / "Metal").mkdir()
    rows = ["Genre;File Name"]
    for i, spelling in enumerate(["Metal", "metal", "METAL ", "Metal", "me-tal"]):
        audiofactory.write(root / "Metal" / f"m{i}.wav", _metal(i))
        rows.append(f"{spelling};Metal/m{i}.wav")
    for i in range(2):
        audiofactory.write(root / f"c{i}.flac", _classical(i))
        rows.append(f"Classical;c{i}.flac")
    audiofactory.write(root / "p.wav", _metal(9))
    audiofactory.write(root / "quiet.wav", np.zeros(7 * 22050, np.float32))
    (root / "broken.mp3").write_bytes(b"\x00garbage" * 100)
    rows += ["Polka;p.wav", "metal;broken.mp3", "classical;gone.flac", "classical;quiet.wav"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def first_evaluation(collection, tiny_models, tmp_path_factory):
    """``scan`` of the collection, then ``evaluate --adjust-priors --json``, with one cache:
    ``(scan result, evaluate result, JSON data, cache path)``."""
    work = tmp_path_factory.mktemp("evaluate")
    cache = work / "cache.sqlite"
    scanned = run("scan", collection, "--models-dir", tiny_models, "--model", "knn", "--cache", cache)
    result = run("evaluate", "--labels", collection / "labels.csv", "--models-dir", tiny_models, "--model", "knn",
                 "--cache", cache, "--adjust-priors", "--json", work / "out.json")
    return scanned, result, json.loads((work / "out.json").read_text()), cache


def test_scores_and_files_left_out(first_evaluation, collection):
    _, result, data, _ = first_evaluation
    assert result.exit_code == 1, result.output  # a missing and a broken file
    assert data["label_distribution"] == {"metal": 6, "classical": 4, "polka": 1}
    assert [row["path"] for row in data["missing"]] == [str(collection / "gone.flac")]
    (model,) = data["models"]
    assert model["model"] == "knn" and model["classes"] == ["classical", "metal"]
    assert [(row["path"], row["raw_label"]) for row in model["outside"]] == [(str(collection / "p.wav"), "Polka")]
    assert model["outside_counts"] == {"polka": 1}
    assert [row["path"] for row in model["failed"]] == [str(collection / "broken.mp3"), str(collection / "quiet.wav")]
    assert "broken.mp3" in model["failed"][0]["error"] and "silent" in model["failed"][1]["error"]
    assert model["distribution"] == {"metal": 5, "classical": 2} and model["imbalance_ratio"] == 2.5
    tracks = model["tracks"]
    assert len(tracks) == 7 and all(t["mean_proba"] for t in tracks)
    y_true, y_pred = [t["label"] for t in tracks], [t["predicted"] for t in tracks]
    assert y_pred == y_true  # the generated genres are easy
    scores = model["scores"]
    assert scores["accuracy"] == scores["balanced_accuracy"] == scores["macro_f1"] == 1.0
    assert scores["balanced_accuracy_ci95"] == [1.0, 1.0]
    assert scores["confusion_labels"] == ["classical", "metal"] and scores["confusion"] == [[2, 0], [0, 5]]
    assert scores["per_class"]["metal"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 5}
    for text in ("balanced accuracy", "confusion matrix", "polka 1", "missing", "gone.flac", "failed"):
        assert text in result.output, text
    assert "…" not in result.output  # tables are printed whole to a pipe, never cut at 80 columns


def test_trust_calibration_coverage_and_outside_genres(first_evaluation, collection, tiny_models, tmp_path):
    """The JSON and the tables say how far the confidence can be trusted (#20): calibration
    error and reliability bins, the share scan would tag and how often right, risk-coverage,
    and what happened to the track of a genre the model does not know."""
    _, result, data, cache = first_evaluation
    model = data["models"][0]
    trust, tracks = model["trust"], model["tracks"]
    confidence = np.array([t["confidence"] for t in tracks])
    assert ((confidence >= 0) & (confidence <= 1)).all()
    assert trust["ece"] == pytest.approx(np.mean(np.abs(1.0 - confidence)), abs=1e-9)  # every prediction is right
    assert sum(b["tracks"] for b in trust["reliability"]) == 7
    assert trust["tagged_share"] == pytest.approx(np.mean([t["uncertain"] is None for t in tracks]))
    assert trust["tagged_accuracy"] in (None, 1.0)
    assert [row["coverage"] for row in trust["risk_coverage"]] == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    assert all(row["accuracy"] == 1.0 for row in trust["risk_coverage"])
    (polka,) = model["outside"]
    assert polka["predicted"] in model["classes"] and "uncertain" in polka and 0 <= polka["confidence"] <= 1
    assert trust["outside_tracks"] == 1 and trust["outside_untagged"] == (0.0 if polka["uncertain"] is None else 1.0)
    for text in ("calibration error (ECE)", "tracks scan would tag", "tags right", "risk-coverage"):
        assert text in " ".join(result.output.split()), text
    # --min-confidence overrides the model's threshold, as in scan: at 1.0 nothing short of certain is tagged
    run("evaluate", "--labels", collection / "labels.csv", "--models-dir", tiny_models, "--model", "knn",
        "--cache", cache, "--min-confidence", "1", "--json", tmp_path / "strict.json")
    strict = json.loads((tmp_path / "strict.json").read_text())["models"][0]
    assert all((t["uncertain"] is None) == (t["confidence"] >= 1.0) for t in strict["tracks"])
    assert strict["scores"] == model["scores"]  # scores are of every prediction; trust says which are tagged


def test_predictions_come_from_the_scan_cache_and_then_from_the_evaluation(first_evaluation, collection, tiny_models, tmp_path):
    scanned, _, data, cache = first_evaluation
    assert scanned.exit_code == 1  # broken.mp3
    # the scan's results serve the 7 scorable files (p.wav is labelled outside the classes, gone.flac is
    # missing, the scan cached quiet.wav as silent) and broken.mp3 is tried again
    assert (data["models"][0]["from_cache"], data["models"][0]["analysed"]) == (7, 1)
    again = run("evaluate", "--labels", collection / "labels.csv", "--models-dir", tiny_models, "--model", "knn",
                "--cache", cache, "--json", tmp_path / "again.json")
    model = json.loads((tmp_path / "again.json").read_text())["models"][0]
    assert (model["from_cache"], model["analysed"]) == (7, 1)  # only the broken file is tried again
    assert "knn: 7 from cache, 0 from cached features, 1 analysed" in again.output
    assert model["scores"] == data["models"][0]["scores"]


def test_a_scan_after_an_evaluation_knows_every_duration(collection, tiny_models, tmp_path):
    """An evaluation first, then a scan of the same files from its cache: the report's
    durations and the hours of audio are there (read from the files' headers)."""
    cache = tmp_path / "cache.sqlite"
    run("evaluate", "--labels", collection / "labels.csv", "--models-dir", tiny_models, "--model", "knn",
        "--cache", cache)
    report = tmp_path / "r.csv"
    scanned = run("scan", collection, "--models-dir", tiny_models, "--model", "knn", "--cache", cache,
                  "--report", report)
    rows = [row for row in csv.DictReader(report.open()) if row["status"] != "failed"]
    assert rows and all(float(row["duration_s"]) > 0 for row in rows), rows
    hours = sum(float(row["duration_s"]) for row in rows) / 3600
    assert f"({hours:.2f} h of audio)" in scanned.output and "0.00 h" not in scanned.output


def test_adjusted_priors(first_evaluation):
    _, result, data, _ = first_evaluation
    model = data["models"][0]
    shift = model["prior_shift"]
    assert shift["training_prior"] == {"classical": 0.5, "metal": 0.5}  # 5 clips each
    assert shift["collection_prior"] == pytest.approx({"classical": 3 / 9, "metal": 6 / 9}, abs=1e-6)  # (2+1, 5+1)/9
    classes = model["classes"]
    proba = np.array([[t["mean_proba"][c] for c in classes] for t in model["tracks"]])
    expected = shift_priors(proba, np.array([0.5, 0.5]), np.array([1 / 3, 2 / 3])).argmax(axis=1)
    assert [t["adjusted"] for t in model["tracks"]] == [classes[i] for i in expected]
    assert shift["changed"] == sum(t["adjusted"] != t["predicted"] for t in model["tracks"])
    assert shift["scores"]["n_tracks"] == 7
    assert "priors adjusted" in result.output


def test_old_cache_entries_are_analysed_again_and_all_models(first_evaluation, collection, tiny_models, tmp_path):
    """Entries of an older cache format (votes not kept) are analysed again, once."""
    cache = tmp_path / "old.sqlite"
    shutil.copy(first_evaluation[3], cache)
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE results SET result = json_remove(result, '$.format', '$.votes')")
    out = tmp_path / "out.json"
    labels = collection / "labels.csv"
    run("evaluate", "--labels", labels, "--models-dir", tiny_models, "--model", "knn", "--cache", cache, "--json", out)
    # the scan cached knn's features (the 57 statistics: narrow enough to keep for a whole library),
    # so the predictions are made again from them: only the silent file (whose features are not kept)
    # and broken.mp3 (which fails again) are decoded
    model = json.loads(out.read_text())["models"][0]
    assert (model["from_cache"], model["analysed"]) == (0, 2) and model["scores"]["n_tracks"] == 7
    assert model["from_features"] >= 7  # said, not "0 from cache, 2 analysed" alone (#32 item 6)
    run("evaluate", "--labels", labels, "--models-dir", tiny_models, "--model", "knn", "--cache", cache,
        "--adjust-priors", "--json", out)
    assert json.loads(out.read_text())["models"][0]["from_cache"] == 7  # now in the current format
    result = run("evaluate", "--labels", labels, "--models-dir", tiny_models, "--model", "all", "--cache", cache,
                 "--json", out)
    models = {model["model"]: model for model in json.loads(out.read_text())["models"]}
    assert {"knn", "lightgbm"} <= set(models)
    knn, lightgbm = models["knn"], models["lightgbm"]
    assert knn["from_cache"] == 7
    # the features knn's evaluation cached serve lightgbm: only broken.mp3 and the silent file are decoded again
    assert lightgbm["analysed"] == 2 and lightgbm["from_features"] >= 7
    assert f"lightgbm: {lightgbm['from_cache']} from cache, {lightgbm['from_features']} from cached features" in result.output
    assert lightgbm["scores"]["n_tracks"] == 7
    assert "lightgbm" in result.output


def test_plot(first_evaluation, collection, tiny_models, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (the 'plot' extra) is not installed")
    sizes = {}
    for model in ("knn", "all"):  # all: knn, lightgbm and their ensemble
        png = tmp_path / f"{model}.png"
        result = run("evaluate", "--labels", collection / "labels.csv", "--models-dir", tiny_models, "--model", model,
                     "--cache", first_evaluation[3], "--adjust-priors", "--plot", png)
        assert result.exit_code == 1, result.output
        pngs = [png] if model == "knn" else [tmp_path / f"all-{name}.png" for name in ("ensemble", "knn", "lightgbm")]
        assert not (model == "all" and png.exists())  # several models: a picture each, not one tall strip
        for path in pngs:
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
            sizes[path.name] = struct.unpack(">II", data[16:24])
            assert f"Wrote {path}" in " ".join(result.output.split())
    # a row of four panels: the confusion matrix before and after the prior shift (sharing a
    # colour bar), the reliability diagram and the risk-coverage curve
    assert sizes["all-knn.png"] == sizes["knn.png"] and sizes["knn.png"][0] > 2 * sizes["knn.png"][1]


def test_plot_without_matplotlib_is_a_usage_error(collection, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    result = run("evaluate", "--labels", collection / "labels.csv", "--models-dir", tiny_models, "--plot", tmp_path / "x.png")
    assert result.exit_code == 2
    assert "pip install 'genre-tagger[plot]'" in " ".join(result.output.split())


def test_usage_errors_exit_2(tmp_path, tiny_models, collection):
    bad = tmp_path / "bad.csv"
    bad.write_text("track,style\na,b\n")
    result = run("evaluate", "--labels", bad, "--models-dir", tiny_models)
    assert result.exit_code == 2 and "bad.csv: no path and genre columns" in " ".join(result.output.split())
    assert run("evaluate", "--labels", collection / "labels.csv", "--models-dir", tiny_models, "--model", "nope").exit_code == 2
    assert run("evaluate", "--labels", tmp_path / "absent.csv", "--models-dir", tiny_models).exit_code == 2
    assert run("evaluate", "--models-dir", tiny_models).exit_code == 2


# any file name a user might have (commas, quotes, spaces, unicode), never empty or all-space
file_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=20
).filter(lambda s: s.strip() == s and s not in (".", "..")).map(lambda s: s + ".mp3")
genre_names = st.sampled_from(["Rock", "hip hop", "Hip-Hop", "jazz", "Classical", "R&B", "drum 'n' bass"])


@settings(max_examples=100)
@given(
    st.lists(st.tuples(file_names, genre_names), min_size=1, max_size=8, unique_by=lambda row: row[0]),
    st.sampled_from([",", ";", "\t"]),
)
def test_labels_csv_round_trips_any_paths_and_delimiter(rows, delimiter):
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(["Path", "Genre"])
    writer.writerows(rows)
    parsed = parse_labels(buffer.getvalue(), "/music/labels.csv")
    assert [(t.path, t.label) for t in parsed.tracks] == [
        (Path("/music") / name, normalise_genre(genre)) for name, genre in rows
    ]


def test_a_file_name_starting_with_a_tilde_is_not_a_home_folder():
    parsed = parse_labels("path,genre\n~draft.mp3,rock\n~/Music/a.mp3,jazz\n", "/music/labels.csv")
    assert parsed.tracks[0].path == Path("/music/~draft.mp3")
    assert parsed.tracks[1].path == Path("~/Music/a.mp3").expanduser()
