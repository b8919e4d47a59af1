"""The four 8 x 8 Utah arrays: which column of tx*/spikePow sits where.

Grids transcribed from the data release's README (``sentences_readme.txt``, Willett et al.
2023): rows run superior -> inferior, columns anterior -> posterior. Area 6v's inferior array
(columns 0-31 and 96-127) is the ventral one; its superior array (32-95) the dorsal one.
"""

from __future__ import annotations

import functools

import numpy as np

N_CHANNELS = 256
GRID = 8

VENTRAL_6V, DORSAL_6V, INFERIOR_44, SUPERIOR_44 = 0, 1, 2, 3
ARRAY_NAMES: tuple[str, ...] = ("6v ventral", "6v dorsal", "44 inferior", "44 superior")

_GRIDS: dict[int, tuple[tuple[int, ...], ...]] = {
    VENTRAL_6V: (
        (125, 126, 112, 103, 31, 28, 11, 8),
        (123, 124, 110, 102, 29, 26, 9, 5),
        (121, 122, 109, 101, 27, 19, 18, 4),
        (119, 120, 108, 100, 25, 15, 12, 6),
        (117, 118, 107, 99, 23, 13, 10, 3),
        (115, 116, 106, 97, 21, 20, 7, 2),
        (113, 114, 105, 98, 17, 24, 14, 0),
        (127, 111, 104, 96, 30, 22, 16, 1),
    ),
    DORSAL_6V: (
        (62, 51, 43, 35, 94, 87, 79, 78),
        (60, 53, 41, 33, 95, 86, 77, 76),
        (63, 54, 47, 44, 93, 84, 75, 74),
        (58, 55, 48, 40, 92, 85, 73, 72),
        (59, 45, 46, 38, 91, 82, 71, 70),
        (61, 49, 42, 36, 90, 83, 69, 68),
        (56, 52, 39, 34, 89, 81, 67, 66),
        (57, 50, 37, 32, 88, 80, 65, 64),
    ),
    INFERIOR_44: (
        (129, 144, 150, 158, 224, 232, 239, 255),
        (128, 142, 152, 145, 226, 233, 242, 241),
        (130, 135, 148, 149, 225, 234, 244, 243),
        (131, 138, 141, 151, 227, 235, 246, 245),
        (134, 140, 143, 153, 228, 236, 248, 247),
        (132, 146, 147, 155, 229, 237, 250, 249),
        (133, 137, 154, 157, 230, 238, 252, 251),
        (136, 139, 156, 159, 231, 240, 254, 253),
    ),
    SUPERIOR_44: (
        (192, 193, 208, 216, 160, 165, 178, 185),
        (194, 195, 209, 217, 162, 167, 180, 184),
        (196, 197, 211, 218, 164, 170, 177, 189),
        (198, 199, 210, 219, 166, 174, 173, 187),
        (200, 201, 213, 220, 168, 176, 183, 186),
        (202, 203, 212, 221, 172, 175, 182, 191),
        (204, 205, 214, 223, 161, 169, 181, 188),
        (206, 207, 215, 222, 163, 171, 179, 190),
    ),
}


@functools.cache
def layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(array id, grid row, grid column) of every channel, each (256,) int64."""
    array = np.full(N_CHANNELS, -1, dtype=np.int64)
    row = np.zeros(N_CHANNELS, dtype=np.int64)
    col = np.zeros(N_CHANNELS, dtype=np.int64)
    for array_id, grid in _GRIDS.items():
        for r, line in enumerate(grid):
            for c, channel in enumerate(line):
                array[channel], row[channel], col[channel] = array_id, r, c
    return array, row, col


def array_of() -> np.ndarray:
    """Array id (VENTRAL_6V, DORSAL_6V, INFERIOR_44, SUPERIOR_44) of every channel, (256,)."""
    return layout()[0]


@functools.cache
def neighbour_matrix() -> np.ndarray:
    """(256, 256) row-normalised adjacency of 8-connected grid neighbours on the same array."""
    array, row, col = layout()
    same = array[:, None] == array[None, :]
    near = (np.abs(row[:, None] - row[None, :]) <= 1) & (np.abs(col[:, None] - col[None, :]) <= 1)
    adjacency = (same & near & ~np.eye(N_CHANNELS, dtype=bool)).astype(np.float64)
    return adjacency / adjacency.sum(axis=1, keepdims=True)
