"""Fitting the gate: the reframed copies it is fitted on."""

from __future__ import annotations

import numpy as np

from helpers import xray_like
from training.fit_gate import REFRAME_ZOOM, reframe_all


def test_reframed_copies_zoom_in_without_inventing_a_border() -> None:
    images = [xray_like(96, 96, seed=s) for s in range(20)]
    images[0] = np.full((96, 96), 200, dtype=np.uint8)
    images[0][:, :8] = 0  # a dark strip on the left edge: zooming in pushes it out or keeps it at the edge
    copies = reframe_all(images, seed=1)
    assert [c.shape for c in copies] == [i.shape for i in images] and all(c.dtype == np.uint8 for c in copies)
    assert copies[0][:, 48:].min() >= 199  # a crop inside the film: no dark border brought in from outside
    assert (copies[0] < 100).mean() <= (images[0] < 100).mean() * REFRAME_ZOOM[1] + 1e-9
    changed = [np.abs(c.astype(int) - i).mean() > 1 for c, i in zip(copies, images, strict=True)]
    assert sum(changed) >= 15  # nearly every copy is zoomed or shifted
    again = reframe_all(images, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(copies, again, strict=True))
