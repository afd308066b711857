"""The one compiled module, the genomics caller's inner loops (Cython; needs a C compiler).

It reads alignment records through pysam's Cython API (pysam's headers at build time).
Everything else about the package is in pyproject.toml.
"""
import pysam
from setuptools import Extension, setup

setup(ext_modules=[Extension("cloudbutton.pipelines.genomics.kernels", ["pipelines/genomics/kernels.pyx"],
                             include_dirs=pysam.get_include(), define_macros=pysam.get_defines())])
