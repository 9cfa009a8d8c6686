"""Decision trees on the 57 GTZAN features, the original study's remaining models
(estimators: :mod:`genre_tagger_plugins.estimators.trees`):

- ``decision-tree``: one tree (entropy, depth 14, balanced classes: the study's grid search);
- ``bagged-trees``: 100 bagged trees, each grown to its full depth;
- ``random-forest``: a random forest (gini, depth 29, balanced classes) of 300 trees.

None of them is trained by a plain ``genre-tagger retrain`` (``retrain_by_default=False``):
a forest of deep trees makes the retrain of every model much slower and its bundle large,
and none earns a place among the shipped models by the unseen-source figure
(``research/results/reproduce_seed_trees.md``). Train one by naming it:
``genre-tagger retrain --data ... --models random-forest``.
"""

from __future__ import annotations

from genre_tagger.hookspecs import ModelSpec, hookimpl

ESTIMATORS = "genre_tagger_plugins.estimators.trees"


@hookimpl
def genre_tagger_models() -> list[ModelSpec]:
    return [
        ModelSpec("decision-tree", ("gtzan57",), f"{ESTIMATORS}:DecisionTreeGenreModel", retrain_by_default=False,
                  description="one decision tree (entropy, depth 14, balanced class weights)"),
        ModelSpec("bagged-trees", ("gtzan57",), f"{ESTIMATORS}:BaggedTreesGenreModel", retrain_by_default=False,
                  description="100 bagged decision trees of full depth"),
        ModelSpec("random-forest", ("gtzan57",), f"{ESTIMATORS}:RandomForestGenreModel", retrain_by_default=False,
                  description="random forest of 300 trees (gini, depth 29, balanced class weights)"),
    ]
