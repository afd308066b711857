"""Metabolomics pipeline: METASPACE-style annotation of imzML imaging mass spectrometry data.

``annotate(imzml, db, out)`` finds which database molecules (as +H/+Na/+K … ions)
are in the dataset, with MSM scores, a target-decoy FDR and ion images.
"""
from .pipeline import Settings, annotate, build_annotate_job

__all__ = ["Settings", "annotate", "build_annotate_job"]
