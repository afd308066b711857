"""Tests of the metabolomics pipeline."""
