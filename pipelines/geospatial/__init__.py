"""geospatial pipeline."""
