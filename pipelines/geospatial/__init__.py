"""Geospatial pipeline: LiDAR LAS/LAZ tiles -> seamless terrain model (DTM GeoTIFF) and products beside it.

Use :func:`dem`, :func:`classify`, :func:`dsm`, :func:`chm`, :func:`density` and :func:`hag` from Python,
or ``cloudbutton geospatial dem|classify|dsm|chm|density|hag``.
"""
from .catalog import build_index_job, index
from .pipeline import build_classify_job, build_dem_job, classify, dem
from .products import build_chm_job, build_density_job, build_dsm_job, build_hag_job, chm, density, dsm, hag
from .smrf import SmrfParams

__all__ = ["SmrfParams", "build_chm_job", "build_classify_job", "build_density_job", "build_dem_job",
           "build_dsm_job", "build_hag_job", "build_index_job", "chm", "classify", "dem", "density", "dsm", "hag",
           "index"]
