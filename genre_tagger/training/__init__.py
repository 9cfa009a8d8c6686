"""Labelled clips -> trained models and honest scores (``genre-tagger retrain``).

In the order :mod:`.retrain` runs them: the clips of a GTZAN-style folder and the
artist-filtered split (:mod:`.clips`), degraded copies of their audio (:mod:`.degrade`),
their feature rows (:mod:`.dataset`), grouped CV and the other protocols (:mod:`.crossval`)
with their scores (:mod:`.scoring`), ensemble weights (:mod:`.ensemble_weights`), nested
CV (:mod:`.nested`), the ablation of each lever (:mod:`.ablation`) and the model card
(:mod:`.modelcard`); the calibration and thresholds of a model's assessment
(:mod:`.assess`).
"""

from genre_tagger.defaults import MIN_TRACKS  # noqa: F401 (re-exported)
