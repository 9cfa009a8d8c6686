"""Pretrained audio embeddings as a lever for issue #8: musicnn (MSD) beside our features.

musicnn (Pons & Serra, 2019; ISC licence) is a CNN trained to tag the Million Song
Dataset; its wheel on PyPI (``musicnn==0.1.0``) ships the trained weights, so nothing is
downloaded at run time. Its penultimate layer (200 units, one row per 3-second patch of
16 kHz audio, the length of our segments) is a general description of the music that
transfers to genre.

This experiment measures, with ``retrain``'s own grouped CV (the 5 clip folds of
:func:`genre_tagger.training.crossval.clip_folds`, duplicate rows not dropped, clean clips, no
augmentation) and the artist-filtered split, ``logreg`` (:class:`genre_tagger_plugins.estimators.logreg.LogReg`)
on:

- our 201 features (``gtzan57`` + ``timbre-rhythm``), the shipped default's;
- the musicnn embedding alone;
- both, side by side (segment ``k`` of a clip is musicnn's patch ``k``: the same 3 s).

musicnn needs TensorFlow's 1.x API, which the project does not depend on, so the
embeddings are made in a separate environment and read back here::

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install "tensorflow-cpu==2.15.*" "numpy<2" librosa
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfenv/bin/python benchmarks/explore_musicnn.py extract --data ../shared/data/gtzan/genres --out /tmp/msd_musicnn.npz
    /tmp/tfenv/bin/python benchmarks/explore_musicnn.py export   # what plugins/musicnn.py ships
    .venv/bin/python benchmarks/explore_musicnn.py score --embeddings /tmp/msd_musicnn.npz --data ../shared/data/gtzan/genres

(extract: about 4 min for the 519 clips on one core; score: about 5 min, the features of
``gtzan57`` and ``timbre-rhythm`` coming from the cache ``retrain`` fills.)

Caveat: musicnn was trained on the Million Song Dataset, which may hold some of the songs
GTZAN's clips come from; the clip-grouped and artist-filtered splits cannot see that.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "explore_musicnn.md"
AUDIO_SUFFIXES = (".au", ".wav", ".ogg", ".flac", ".mp3")


def extract(data: Path, out: Path, model: str = "MSD_musicnn") -> None:
    """musicnn's outputs for every non-overlapping 3-s patch of every clip under ``data``
    (``<genre>/<clip>.<ext>``), saved to ``out`` (npz: ``penultimate`` [n, 200], ``tags``
    [n, 50], ``groups`` clip ids, ``genres``, ``segment`` patch index)."""
    import librosa
    import tensorflow as tf
    from musicnn import configuration as config

    # musicnn.extractor's own steps, with the graph built and the weights restored once
    session, x, is_training, logits, penultimate = _restore(model)
    tags = tf.nn.sigmoid(logits)
    n_frames = int(x.shape[1])
    files = sorted(p for p in data.glob("*/*") if p.suffix in AUDIO_SUFFIXES)
    rows: dict[str, list] = {"penultimate": [], "tags": [], "groups": [], "genres": [], "segment": []}
    started = time.perf_counter()
    for i, path in enumerate(files):
        audio, sr = librosa.load(path, sr=config.SR)
        mel = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE,
                                             n_mels=config.N_MELS).T
        mel = np.log10(10000 * mel.astype(np.float16) + 1)
        n = len(mel) // n_frames
        if n == 0:
            continue
        patches = mel[: n * n_frames].reshape(n, n_frames, config.N_MELS)
        embedding, tagged = session.run([penultimate, tags], feed_dict={x: patches, is_training: False})
        rows["penultimate"].append(embedding)
        rows["tags"].append(tagged)
        rows["groups"] += [path.stem] * n
        rows["genres"] += [path.parent.name] * n
        rows["segment"] += list(range(n))
        if i % 50 == 0:
            print(f"{i}/{len(files)} clips, {time.perf_counter() - started:.0f} s", flush=True)
    np.savez(out, penultimate=np.vstack(rows["penultimate"]), tags=np.vstack(rows["tags"]),
             groups=np.array(rows["groups"]), genres=np.array(rows["genres"]), segment=np.array(rows["segment"]))
    print(f"wrote {out}")


def _restore(model: str = "MSD_musicnn"):
    """musicnn's graph for 3-s patches, its weights restored: ``(session, input, is_training,
    logits, penultimate)``."""
    import librosa
    import tensorflow as tf
    from musicnn import configuration as config
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    n_frames = librosa.time_to_frames(3, sr=config.SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP) + 1
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, *_, penultimate = models.define_model(x, is_training, model, len(config.MSD_LABELS))
    session = tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1,
                                                                    inter_op_parallelism_threads=1))
    tf.compat.v1.train.Saver().restore(session, os.path.join(os.path.dirname(models.__file__), model) + "/")
    return session, x, is_training, logits, penultimate


def export(model: str = "MSD_musicnn") -> None:
    """Write what the ``musicnn`` feature plugin ships: the network's weights
    (``plugins/musicnn_msd.npz``, named as in the TensorFlow graph, optimiser state left
    out) and the test reference (``tests/data/musicnn_reference.npz``: two input patches of
    a chord with clicks, and the embedding TensorFlow gives them)."""
    import librosa
    import tensorflow as tf
    from musicnn import models

    reader = tf.compat.v1.train.NewCheckpointReader(os.path.join(os.path.dirname(models.__file__), model) + "/")
    names = sorted(n for n in reader.get_variable_to_shape_map() if "Adam" not in n and "_power" not in n)
    np.savez(ROOT / "plugins" / "musicnn_msd.npz", **{name: reader.get_tensor(name) for name in names})
    sr = 16000
    t = np.arange(6 * sr) / sr
    y = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 330 * t)
         + 0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y[:: sr // 2] += 0.8
    mel = librosa.feature.melspectrogram(y=y, sr=sr, hop_length=256, n_fft=512, n_mels=96).T
    patches = np.log10(10000 * mel.astype(np.float16) + 1)[: 2 * 187].reshape(2, 187, 96).astype(np.float32)
    session, x, is_training, _, penultimate = _restore(model)
    expected = session.run(penultimate, feed_dict={x: patches, is_training: False})
    np.savez_compressed(ROOT / "tests" / "data" / "musicnn_reference.npz", patches=patches, penultimate=expected)
    print(f"wrote {len(names)} arrays to plugins/musicnn_msd.npz and tests/data/musicnn_reference.npz")


def score(embeddings: Path, data: Path, cache_path: str | None, split_dir: Path) -> None:
    from genre_tagger.pipeline.cache import Cache, default_path
    from genre_tagger.plugins import registry
    from genre_tagger.training.clips import find_clips, read_split_dir
    from genre_tagger.training.crossval import artist_split, grouped_cv
    from genre_tagger.training.dataset import Dataset, build_dataset
    from genre_tagger_plugins.estimators.logreg import LogReg

    started = time.perf_counter()
    musicnn = np.load(embeddings)
    splits = read_split_dir(split_dir)
    with Cache(cache_path or default_path()) as cache:
        ours = build_dataset(find_clips(data), [registry().feature_extractor(n) for n in ("gtzan57", "timbre-rhythm")], cache)
    row_of = {(g, s): i for i, (g, s) in enumerate(zip(musicnn["groups"].astype(str), musicnn["segment"]))}
    both = np.array([(g, s) in row_of for g, s in zip(ours.groups, ours.segment)])
    ours = ours.subset(both)  # a clip's last segment may have no whole 16 kHz patch
    embedding = musicnn["penultimate"][[row_of[(g, s)] for g, s in zip(ours.groups, ours.segment)]].astype(float)
    versions = {"musicnn": "MSD_musicnn"}
    candidates = {
        "gtzan57 + timbre-rhythm (201)": ours,
        "musicnn penultimate (200)": Dataset({"musicnn": embedding}, versions, ours.y, ours.groups, ours.segment),
        "gtzan57 + timbre-rhythm + musicnn (401)": Dataset({**ours.features, "musicnn": embedding},
                                                           {**ours.versions, **versions}, ours.y, ours.groups, ours.segment),
    }
    lines = ["| logreg on | grouped CV | soft vote | artist split |", "|---|---|---|---|"]
    for name, dataset in candidates.items():
        cv = grouped_cv(LogReg(), dataset).scores
        artist = artist_split(LogReg(), dataset, splits).scores
        lines.append(f"| {name} | {cv['track_balanced_accuracy']:.3f} ± {cv['track_balanced_accuracy_std']:.3f} | "
                     f"{cv['track_balanced_accuracy_soft']:.3f} | {artist['track_balanced_accuracy']:.3f} |")
        print(lines[-1], flush=True)
    text = "\n".join([
        "# explore_musicnn", "",
        f"`benchmarks/explore_musicnn.py score`, {len(np.unique(ours.groups))} clips, {len(ours.y)} segments, "
        f"{(time.perf_counter() - started) / 60:.1f} min. Track balanced accuracy (majority vote unless stated); "
        "grouped CV ± spread over its 5 folds; clean clips, no augmentation.", "", *lines, "",
    ])
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("export", help="the weights and test reference the musicnn plugin ships "
                                         "(needs TensorFlow and musicnn)")
    make = commands.add_parser("extract", help="musicnn embeddings of every clip (needs TensorFlow and musicnn)")
    make.add_argument("--data", type=Path, default=Path("../shared/data/gtzan/genres"))
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--model", default="MSD_musicnn", help="a model of the musicnn wheel: MSD_musicnn, MTT_musicnn, ...")
    check = commands.add_parser("score", help="grouped CV and artist split of logreg with and without them")
    check.add_argument("--embeddings", type=Path, required=True)
    check.add_argument("--data", type=Path, default=Path("../shared/data/gtzan/genres"))
    check.add_argument("--split-dir", type=Path, default=Path("../shared/data/gtzan/splits"))
    check.add_argument("--cache", default=None, help="feature cache (default: genre-tagger's)")
    args = parser.parse_args()
    if args.command == "export":
        export()
    elif args.command == "extract":
        extract(args.data, args.out, args.model)
    else:
        score(args.embeddings, args.data, args.cache, args.split_dir)


if __name__ == "__main__":
    main()
