"""Image metrics against direct, loop-based implementations of their definitions."""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from cloudbutton.pipelines.metabolomics import metrics


def _metaspace_rows(mask: np.ndarray):
    """METASPACE ``_chaos_dilate``: in-place shifts (+1, +1, then -2) of a row/column mask, 90 % rule."""
    arr = mask.copy()
    arr[1:] |= arr[:-1]
    arr[1:] |= arr[:-1]
    arr[:-2] |= arr[2:]
    return slice(None) if np.count_nonzero(arr) >= 0.9 * len(arr) else arr


def direct_chaos(img: np.ndarray, n_levels: int = 30) -> float:
    """METASPACE ``chaos_metric`` + ims-cpp ``measureOfChaos`` (dcc12b4), transcribed with plain loops.

    Per pixel a thermometer bit code of the levels it exceeds; bitwise cross dilation and
    square erosion of those codes; 4-connected components per bit; 1 - mean/#non-zero.
    """
    img = img[_metaspace_rows(np.any(img, axis=1)), :]
    img = img[:, _metaspace_rows(np.any(img, axis=0))]
    if img.size == 0:
        return 0.0
    img = img.astype(np.float32)
    h, w = img.shape
    top = np.float32(img.max())
    levels = [np.float32(top * np.float32(i)) / np.float32(n_levels) for i in range(n_levels)]
    levels.append(np.float32(np.finfo(np.float32).max))
    code = [[0] * w for _ in range(h)]
    for y in range(h):
        for x in range(w):
            j = 0
            while img[y, x] > levels[j]:
                code[y][x] = (code[y][x] << 1) | 1
                j += 1
    dil = [row[:] for row in code]
    for y in range(h):
        for x in range(w):
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    dil[y + dy][x + dx] |= code[y][x]
    ero = [row[:] for row in dil]
    for y in range(h):
        for x in range(w):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if (dy or dx) and 0 <= y + dy < h and 0 <= x + dx < w:
                        ero[y][x] &= dil[y + dy][x + dx]
    counts = []
    for level in range(n_levels):
        bit = 1 << level
        seen, n = set(), 0
        for y in range(h):
            for x in range(w):
                if ero[y][x] & bit and (y, x) not in seen:
                    n += 1
                    queue = deque([(y, x)])
                    seen.add((y, x))
                    while queue:
                        cy, cx = queue.popleft()
                        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < h and 0 <= nx < w and ero[ny][nx] & bit and (ny, nx) not in seen:
                                seen.add((ny, nx))
                                queue.append((ny, nx))
        counts.append(n)
    value = 1.0 - np.mean(counts) / np.count_nonzero(img > 0)
    return 0.0 if np.isclose(value, 1.0) else float(value)


def _images(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:18, 0:23]
    blob = np.exp(-((yy - rng.uniform(3, 15)) ** 2 + (xx - rng.uniform(3, 20)) ** 2) / rng.uniform(8, 40))
    blob[blob < 0.05] = 0
    noise = np.where(rng.random((18, 23)) < 0.3, rng.random((18, 23)), 0.0)
    apart = np.zeros((30, 23))  # two objects far apart: the empty rows between them are dropped
    apart[2:5, 3:7] = rng.random((3, 4)) + 0.5
    apart[24:27, 15:19] = rng.random((3, 4)) + 0.5
    return {"random": rng.random((18, 23)), "blob": blob, "noise": noise,
            "edge": np.pad(np.ones((4, 5)), ((0, 14), (18, 0))),  # touches the border
            "sparse": np.where(rng.random((25, 25)) < 0.02, rng.random((25, 25)) + 0.1, 0.0), "apart": apart}


@pytest.mark.parametrize("seed", range(4))
def test_chaos_equals_direct_definition(seed: int) -> None:
    for name, img in _images(seed).items():
        assert metrics.chaos(img) == pytest.approx(direct_chaos(img), abs=1e-12), name


def test_chaos_levels_and_crop_by_hand() -> None:
    flat = np.zeros((9, 9))
    flat[3:6, 3:6] = 2.0  # every level max*i/30 (i < 30) is below 2: one object at all 30 levels
    assert metrics.chaos(flat) == pytest.approx(1 - 1 / 9, abs=1e-12)  # max*i/29 would give 1 - (29/30)/9
    assert metrics.chaos(flat, n_levels=10) == pytest.approx(1 - 1 / 9, abs=1e-12)
    ramp = np.zeros((9, 9))
    ramp[3:6, 3:6] = np.arange(1, 10, dtype=float).reshape(3, 3)  # 9 above level i iff 9 > 9*i/30
    assert metrics.chaos(ramp) == pytest.approx(direct_chaos(ramp), abs=1e-12)


def test_chaos_ranks_structure() -> None:
    imgs = _images(0)
    assert metrics.chaos(imgs["blob"]) > metrics.chaos(imgs["noise"])
    assert metrics.chaos(np.zeros((5, 5))) == 0.0


def _stats(imgs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sufficient statistics of dense (n, k, pixels) images, as the annotate stage builds them sparsely."""
    mask = imgs[:, :1, :] > 0
    return ((imgs * mask).sum(axis=2), imgs.sum(axis=2), (imgs ** 2).sum(axis=2),
            (imgs * imgs[:, :1, :]).sum(axis=2), np.count_nonzero(imgs[:, 0, :], axis=1))


def test_spectral_and_spatial_match_formulas() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(50) * (rng.random(50) < 0.7)
    theo = np.array([100.0, 40.0, 10.0, 2.0])
    imgs = np.stack([base * t / 100 * (1 + 0.2 * rng.random(50)) for t in theo])
    mask = imgs[0] > 0
    s = imgs[:, mask].sum(axis=1)
    expected_spectral = 1 - np.mean(np.abs(theo / np.linalg.norm(theo) - s / np.linalg.norm(s)))
    corr = [np.corrcoef(imgs[0], imgs[k])[0, 1] for k in (1, 2, 3)]
    expected_spatial = np.clip(np.average(corr, weights=theo[1:]), 0, 1)
    totals, sums, squares, cross, nnz0 = _stats(imgs[None])
    assert metrics.spectral(totals, theo[None])[0] == pytest.approx(expected_spectral, rel=1e-12)
    assert metrics.spatial(sums, squares, cross, nnz0, theo[None], 50)[0] == pytest.approx(expected_spatial, rel=1e-9)
    # early-rejection edge cases: one non-zero pixel, empty images, zero weights, anti-correlated isotopes
    one = np.zeros((1, 4, 50))
    one[0, 0, 3] = 5.0
    assert metrics.spatial(*_stats(one)[1:], theo[None], 50)[0] == 0.0
    assert metrics.spectral(np.zeros((1, 4)), theo[None])[0] == 0.0
    assert metrics.spatial(sums, squares, cross, nnz0, np.array([[100.0, 0, 0, 0]]), 50)[0] == 0.0
    apart = np.zeros((1, 4, 50))
    apart[0, 0, :25], apart[0, 1:, 25:] = 1.0, 1.0
    assert metrics.spatial(*_stats(apart)[1:], theo[None], 50)[0] == 0.0
