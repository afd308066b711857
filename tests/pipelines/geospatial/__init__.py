"""Tests of the geospatial pipeline (a package, so module names do not clash with other pipelines)."""
