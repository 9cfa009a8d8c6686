"""A user's own labels -> scores (``genre-tagger evaluate``): the labels CSV and genre
names (:mod:`.labels`), the evaluation itself (:mod:`.evaluate`), its scores
(:mod:`.scores`), the prior shift (:mod:`.priors`) and the confusion plot (:mod:`.plots`)."""
