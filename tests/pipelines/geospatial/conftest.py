"""Fixtures of the geospatial tests: the synthetic sample."""
from __future__ import annotations

import pytest

from cloudbutton.pipelines.geospatial.synthetic import make_survey, write_tiles


@pytest.fixture(scope="session")
def sample_tiles(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A small synthetic survey (160 x 120 m) as 2 x 2 tiles, LAS 1.2 and LAZ 1.4."""
    return write_tiles(make_survey(160.0, 120.0, seed=3), str(tmp_path_factory.mktemp("sample")))
