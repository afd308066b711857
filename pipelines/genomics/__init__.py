"""Genomics pipeline: region-chunked SNP/indel calling, BAM/CRAM + reference -> VCF.

Use :func:`call` from Python or ``cloudbutton genomics call`` from the shell.
"""
from .pipeline import CallSummary, build_call_job, call

__all__ = ["CallSummary", "build_call_job", "call"]
