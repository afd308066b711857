"""Ground and noise decisions for a set of points: ELM noise first, then SMRF.

This is what a PDAL user runs (``filters.elm`` then ``filters.smrf`` ignoring
class 7): points already labelled noise (7, 18) and the points ELM finds are
never ground, and SMRF sees only last/only returns that are not noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .noise import ElmParams, elm_noise
from .smrf import SmrfParams, influence_cells, smrf_ground

#: Classes never used by SMRF (ASPRS low and high noise).
NOISE_CLASSES = (7, 18)


@dataclass(frozen=True)
class GroundFilter:
    """The ground filter of a job: SMRF, with ELM noise removal before it unless ``elm`` is None."""

    smrf: SmrfParams = SmrfParams()
    elm: ElmParams | None = ElmParams()

    @property
    def margin(self) -> float:
        """Distance read around a tile so its points are decided as in an untiled run.

        An opening of radius W reaches 2 W, a few more cells cover the
        inpainting and the gradient, and the ELM cells of the points within
        that reach must be whole.
        """
        return influence_cells(self.smrf) * self.smrf.cell + (self.elm.cell if self.elm else 0.0)


@dataclass(frozen=True)
class Decision:
    """Per point: ground (True) and newly found noise (True)."""

    ground: np.ndarray
    noise: np.ndarray


def decide(x: np.ndarray, y: np.ndarray, z: np.ndarray, classification: np.ndarray, last: np.ndarray,
           flt: GroundFilter = GroundFilter(), origin: tuple[float, float] = (0.0, 0.0)) -> Decision:
    """Find the noise (ELM) and the ground (SMRF on last/only returns that are not noise).

    Parameters
    ----------
    x, y, z, classification : the points.
    last : True for last or only returns (SMRF's working set).
    flt : the filter parameters.
    origin : a point on the cell lattices (the global grid origin in a tiled job).
    """
    known = np.isin(classification, NOISE_CLASSES)
    noise = np.zeros(len(x), dtype=bool)
    if flt.elm is not None:
        candidates = np.flatnonzero(~known)
        noise[candidates] = elm_noise(x[candidates], y[candidates], z[candidates], flt.elm, origin)
    work = np.flatnonzero(np.asarray(last, bool) & ~known & ~noise)
    ground = np.zeros(len(x), dtype=bool)
    ground[work] = smrf_ground(x[work], y[work], z[work], flt.smrf, origin=origin)
    return Decision(ground, noise)
