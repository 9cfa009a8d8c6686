"""Logistic regression models (estimator: :class:`genre_tagger_plugins.estimators.logreg.LogReg`):

- ``logreg`` on ``gtzan57`` + ``timbre-rhythm``;
- ``musicnn-logreg`` on the same plus the ``musicnn`` embedding (401 columns). musicnn's
  embedding is learned from the Million Song Dataset's tags, so it carries what 3 s of
  hand-made statistics cannot; the hand-made columns stay beside it (they add little
  under grouped CV but about 0.04-0.1 on the artist split,
  ``benchmarks/results/explore_musicnn.md``). It scans several times slower than
  ``logreg``: musicnn's network costs about 60 ms per segment;
- ``hog-logreg``, the original study's spectrogram model: HOG of the log-mel
  spectrogram (``hog-mel``), PCA to 128 components, logistic regression. The 128
  components were chosen with the HOG settings by clip-grouped CV on GTZAN
  (``benchmarks/select_hog.py``, ``benchmarks/results/hog_selection.md``), and so are
  its candidate regularisations, stronger than the others' for 1176 columns.
"""

from __future__ import annotations

from genre_tagger.hookspecs import ModelSpec, hookimpl

ESTIMATOR = "genre_tagger_plugins.estimators.logreg:LogReg"
#: chosen with the hog-mel settings by benchmarks/select_hog.py
HOG_N_COMPONENTS = 128
HOG_C_CANDIDATES = (0.0003, 0.001, 0.003, 0.01, 0.03)
#: chosen on music from a source it never trained on (trained on GTZAN, scored on Emotify:
#: research/results/explore_unseen_source.md), not by GTZAN's own inner CV, which prefers
#: weaker regularisation that learns GTZAN's recording chain
MUSICNN_C = 0.001


@hookimpl
def genre_tagger_models() -> list[ModelSpec]:
    return [
        ModelSpec("logreg", ("gtzan57", "timbre-rhythm"), ESTIMATOR,
                  description="standardise, logistic regression with balanced class weights (C by inner grouped CV)"),
        ModelSpec("musicnn-logreg", ("gtzan57", "timbre-rhythm", "musicnn"), ESTIMATOR, {"C": MUSICNN_C},
                  description=f"the same on gtzan57 + timbre-rhythm + musicnn, C = {MUSICNN_C:g}"),
        ModelSpec("hog-logreg", ("hog-mel",), ESTIMATOR, {"n_components": HOG_N_COMPONENTS, "C": HOG_C_CANDIDATES},
                  description="the same with PCA, on hog-mel"),
    ]
