"""genomics pipeline."""
