"""Geospatial pipeline: LiDAR LAS/LAZ tiles -> seamless terrain model (DTM GeoTIFF).

Use :func:`dem` and :func:`classify` from Python, or ``cloudbutton geospatial dem|classify``.
"""
from .pipeline import build_classify_job, build_dem_job, classify, dem
from .smrf import SmrfParams

__all__ = ["SmrfParams", "build_classify_job", "build_dem_job", "classify", "dem"]
