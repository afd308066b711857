"""The one compiled module, the genomics caller's inner loops (Cython; needs a C compiler).

Everything else about the package is in pyproject.toml.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("cloudbutton.pipelines.genomics.kernels", ["pipelines/genomics/kernels.pyx"])])
