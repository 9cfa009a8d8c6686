import numpy as np
import pytest

from genre_tagger import segments


def test_split_follows_the_kaggle_convention():
    y = np.arange(3 * 66149 + 100, dtype=np.float32)
    cut = segments.split(y)
    assert cut.shape == (3, 66149)
    assert cut[1, 0] == 66149  # consecutive windows, trailing partial window dropped
    assert not cut.flags.writeable


def test_too_short_is_an_error_not_a_crash():
    with pytest.raises(segments.TooShortError, match=r"3.00 s \(66148 samples\) long, shorter than one 3.00 s \(66149 samples\) segment"):
        segments.split(np.zeros(66148, np.float32))


@pytest.mark.parametrize("n,m", [(80, 20), (10, 20), (21, 20), (1000, 7), (5, 0)])
def test_spread_is_even_unique_and_bounded(n, m):
    index = segments.spread(n, m)
    assert len(index) == (min(n, m) if m else n)
    assert len(set(index)) == len(index) and index.min() >= 0 and index.max() < n
    if m and n > m:
        gaps = np.diff(index)
        assert gaps.max() - gaps.min() <= 1
