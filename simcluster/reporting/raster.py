"""Pixel-exact stacked shares: how many pixels of each lane's column each state gets.

A lane ``height`` pixels tall and ``n`` columns wide shows, in every column, each state's
share of that column's time as a stack of pixels. Rounding each column on its own would
drift (a state at 0.4 px per column would never appear); instead each state carries its
rounding error to the next column (error diffusion), so over any run of columns the pixels
a state gets stay within about one pixel of its exact area. Drawn images are plain RGB
arrays placed 1:1 in the figure (``figimage``), so nothing resamples them.
"""

from __future__ import annotations

import numpy as np


def allocate(shares: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Pixels per (lane, state, column) for ``shares`` of shape ``(lanes, states, columns)``.

    ``shares`` are fractions of each column (each column's sum at most 1); ``heights`` the
    lanes' heights in pixels. In each column the stack's boundaries (the cumulative wanted
    pixels: share × height plus the error carried from the previous column) are rounded, so a
    column never holds more than its lane and each state's carried error stays below one
    pixel: over the whole lane a state's pixels are within one of its exact area.
    """
    n_lanes, n_states, n_cols = shares.shape
    h = np.asarray(heights, dtype=float)[:, None]
    out = np.zeros(shares.shape, dtype=np.int32)
    carry = np.zeros((n_lanes, n_states))
    want_all = shares * h[:, :, None]
    zero = np.zeros((n_lanes, 1))
    for j in range(n_cols):
        want = want_all[:, :, j] + carry
        bounds = np.minimum(np.rint(np.cumsum(np.maximum(want, 0.0), axis=1)), h)
        n = np.diff(bounds, axis=1, prepend=zero)
        out[:, :, j] = n
        carry = want - n
    return out


def paint_to(counts: np.ndarray, colours: np.ndarray, background: np.ndarray, height: int) -> np.ndarray:
    """An RGB image ``(height, columns, 3)`` of one lane: each column's states stacked from
    the bottom in state order (``counts``: ``(states, columns)``; ``colours``: ``(states, 3)``
    uint8); pixels above the stack take ``background``."""
    n_states, n_cols = counts.shape
    top = np.cumsum(counts, axis=0)  # (states, columns): a state's stack ends below this row
    y = np.arange(height)[:, None, None]  # 0 = bottom row
    idx = (top[None, :, :] <= y).sum(axis=1)  # (height, columns): first state whose stack covers y
    palette = np.vstack([colours, background[None, :]]).astype(np.uint8)
    img = palette[np.minimum(idx, n_states)]
    return img[::-1]  # row 0 of an image is its top


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as integers."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
