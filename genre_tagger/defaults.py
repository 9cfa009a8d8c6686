"""Defaults the commands' options show, in a module that imports nothing.

They live here, not beside the code that uses them (:mod:`genre_tagger.segments`,
:mod:`genre_tagger.models.voting`, :mod:`genre_tagger.training`, which re-export them), so
that ``genre-tagger --help`` need not import numpy and the models.
"""

#: segments scan analyses of a track by default, spread evenly over it: a 4-minute track
#: has 80, and 10 evenly spaced ones still sample intro, body and outro while scanning 8x
#: less audio. The scores are of 10-segment votes (a GTZAN clip has 10), and on them
#: accuracy stops rising from about 6 segments voting (benchmarks/results/explore_segments.md)
DEFAULT_MAX_SEGMENTS = 10

#: ``majority``: the class most segments put first (ties: the higher mean probability,
#: then the first class); ``soft``: the class of highest mean probability
VOTES = ("majority", "soft")

#: With ``--from-tags`` or ``--labels``, genres with fewer tracks are left out (and reported).
MIN_TRACKS = 5
