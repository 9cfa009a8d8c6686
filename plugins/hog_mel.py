"""Histograms of oriented gradients (HOG) of the log-mel spectrogram of each segment.

The original study drew mel spectrograms to PNG with matplotlib, cropped the plot
borders and ran HOG on the pixels. Here the image is the spectrogram itself, computed
from the audio with no rendering step, so there are no axes, borders, colour maps or
resampling to the screen:

1. **mel power** -- ``librosa.feature.melspectrogram(y=segments, sr=22050, n_fft=2048,
   hop_length=512, n_mels=N_MELS)`` on the whole batch at once: ``[n, N_MELS, 130]``
   for 66149-sample segments (one pixel = one mel band x one 23.2 ms frame, row 0 the
   lowest band);
2. **dB, per segment** -- ``librosa.power_to_db(S, ref=np.max, top_db=80)`` applied to
   *each segment separately* (over the batch, the loudest segment would set the reference
   and floor of all the others, and a row would depend on its neighbours);
3. **fixed range** -- ``(dB + 80) / 80``: every image lies in ``[0, 1]``, 1 at the
   segment's loudest pixel, 0 at 80 dB below it and lower;
4. **HOG** -- ``skimage.feature.hog`` with square cells of :data:`PIXELS_PER_CELL` pixels,
   :data:`ORIENTATIONS` unsigned orientation bins, blocks of 2 x 2 cells, ``L2-Hys``
   block normalisation, flattened to one row.

The defaults -- 128 mel bands, 16 x 16 pixel cells (16 bands x 0.37 s), 6 orientations:
7 x 7 blocks, 1176 features per segment -- were chosen by clip-grouped cross-validation
on GTZAN, scored by track balanced accuracy, among 64/128 bands, 8/12/16/24/32-pixel
cells and 6/9/12 orientations: 16-pixel cells on 128 bands scored best with every
orientation count, and 6 orientations was within noise of the best with the fewest
features. See ``benchmarks/select_hog.py`` and ``benchmarks/results/hog_selection.md``.
Changing any of them changes the numbers, so :attr:`HogMel.version` must be bumped.
"""

from __future__ import annotations

import numpy as np

from genre_tagger import spectrum
from genre_tagger.hookspecs import hookimpl
from genre_tagger.segments import SEGMENT_SAMPLES
from genre_tagger.spectrum import HOP_LENGTH, TOP_DB, Segments, mel_power, power_to_db

#: chosen by benchmarks/select_hog.py (see the module docstring)
N_MELS = 128
PIXELS_PER_CELL = 16
ORIENTATIONS = 6
CELLS_PER_BLOCK = 2


def n_frames(n_samples: int = SEGMENT_SAMPLES, hop_length: int = HOP_LENGTH) -> int:
    """Frames of a centred STFT of ``n_samples`` samples (130 for a 3-second segment)."""
    return 1 + n_samples // hop_length


def log_mel_images(segments: Segments, n_mels: int = N_MELS, top_db: float = TOP_DB) -> np.ndarray:
    """Per-segment log-mel spectrograms scaled to ``[0, 1]``.

    ``segments`` are :class:`~genre_tagger.spectrum.Segments` of 22050 Hz audio, whose
    STFT power it reads; returns float32 ``[n, n_mels, n_frames(n_samples)]`` where
    ``(dB + top_db) / top_db`` maps each segment's loudest pixel to 1 and anything
    ``top_db`` dB below it to 0. Row 0 is the lowest mel band. Equal, segment by
    segment, to ``librosa.feature.melspectrogram`` followed by
    ``librosa.power_to_db(ref=np.max, top_db=top_db)`` on that segment alone.
    """
    images = [((power_to_db(mel_power(batch.power, n_mels), "max", top_db) + top_db) / top_db).astype(np.float32)
              for batch in spectrum.batches(segments)]
    if images:
        return np.concatenate(images)
    return np.empty((0, n_mels, n_frames(segments.n_samples)), np.float32)


def hog_of_images(
    images: np.ndarray,
    orientations: int = ORIENTATIONS,
    pixels_per_cell: int = PIXELS_PER_CELL,
    cells_per_block: int = CELLS_PER_BLOCK,
) -> np.ndarray:
    """HOG descriptor of each image: ``[n, height, width]`` -> float64 ``[n, n_features]``.

    ``skimage.feature.hog`` with square cells and blocks, ``L2-Hys`` normalisation; the
    pixels past the last whole cell (right and top edges) are ignored, as skimage does.
    """
    from skimage.feature import hog  # here: a scan answered from the cache never needs it

    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected images of shape [n, height, width], got shape {images.shape}")
    size = hog_size(images.shape[1], images.shape[2], orientations, pixels_per_cell, cells_per_block)
    out = np.empty((len(images), size), dtype=np.float64)
    for i, image in enumerate(images):  # skimage's hog takes one image at a time
        out[i] = hog(
            image,
            orientations=orientations,
            pixels_per_cell=(pixels_per_cell, pixels_per_cell),
            cells_per_block=(cells_per_block, cells_per_block),
            block_norm="L2-Hys",
            feature_vector=True,
        )
    return out


def hog_size(height: int, width: int, orientations: int, pixels_per_cell: int, cells_per_block: int) -> int:
    """Length of the HOG descriptor of a ``height x width`` image (0 if smaller than a block)."""
    blocks_y = max(0, height // pixels_per_cell - cells_per_block + 1)
    blocks_x = max(0, width // pixels_per_cell - cells_per_block + 1)
    return blocks_y * blocks_x * cells_per_block**2 * orientations


class HogMel:
    """HOG of the per-segment log-mel spectrogram (see the module docstring).

    Parameters
    ----------
    n_mels : mel bands, the image height in pixels.
    pixels_per_cell : side of a square HOG cell, in pixels (bands x frames).
    orientations : unsigned gradient orientation bins per cell.
    cells_per_block : side of a square normalisation block, in cells.
    n_samples : segment length in samples (the feature names depend on the image size).
    """

    name = "hog-mel"
    version = "1"

    def __init__(
        self,
        n_mels: int = N_MELS,
        pixels_per_cell: int = PIXELS_PER_CELL,
        orientations: int = ORIENTATIONS,
        cells_per_block: int = CELLS_PER_BLOCK,
        n_samples: int = SEGMENT_SAMPLES,
    ):
        self.n_mels = n_mels
        self.pixels_per_cell = pixels_per_cell
        self.orientations = orientations
        self.cells_per_block = cells_per_block
        self.n_samples = n_samples
        height, width = n_mels, n_frames(n_samples)
        blocks_y = height // pixels_per_cell - cells_per_block + 1
        blocks_x = width // pixels_per_cell - cells_per_block + 1
        if blocks_y < 1 or blocks_x < 1:
            raise ValueError(f"a {height}x{width} spectrogram is smaller than one HOG block")
        # skimage's flattening order: block row, block column, cell row, cell column, bin
        self.feature_names: list[str] = [
            f"hog_b{by}_{bx}_c{cy}_{cx}_o{o}"
            for by in range(blocks_y)
            for bx in range(blocks_x)
            for cy in range(cells_per_block)
            for cx in range(cells_per_block)
            for o in range(orientations)
        ]

    def __repr__(self) -> str:
        return (
            f"HogMel(n_mels={self.n_mels}, pixels_per_cell={self.pixels_per_cell}, "
            f"orientations={self.orientations}, cells_per_block={self.cells_per_block})"
        )

    def extract(self, segments: Segments) -> np.ndarray:
        """HOG features of a batch of segments.

        ``segments``: :class:`~genre_tagger.spectrum.Segments` of 22050 Hz audio
        (``n_samples`` = 66149 for the standard 3-second segments). Returns float64
        ``[n_segments, len(feature_names)]``; each row depends on its own segment only.
        """
        if segments.n_samples != self.n_samples:
            raise ValueError(f"expected segments of shape [n_segments, {self.n_samples}], "
                             f"got shape {segments.samples.shape}")
        images = log_mel_images(segments, self.n_mels)
        return hog_of_images(images, self.orientations, self.pixels_per_cell, self.cells_per_block)


@hookimpl
def genre_tagger_feature_extractors() -> list[HogMel]:
    """The plugin hook: this module provides the ``hog-mel`` feature extractor."""
    return [HogMel()]
