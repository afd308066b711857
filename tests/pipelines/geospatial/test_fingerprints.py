"""The content digests `cloudbutton bench` compares: classify's and hag's see the point fields, any point format."""
from __future__ import annotations

import laspy
import numpy as np
import pytest

from cloudbutton.pipelines.geospatial.cli import pipeline


@pytest.mark.parametrize("point_format", [1, 6])  # classification is a bit-field view in formats 0-5
def test_classify_fingerprint_follows_the_classes(tmp_path, point_format):
    header = laspy.LasHeader(point_format=point_format, version="1.4")
    header.scales, header.offsets = np.array([0.01] * 3), np.zeros(3)
    las = laspy.LasData(header)
    las.x, las.y, las.z = np.arange(5.0), np.arange(5.0), np.ones(5)
    las.classification = np.array([1, 2, 2, 6, 7], dtype=np.uint8)
    fingerprint = pipeline.commands["classify"].fingerprint
    las.write(tmp_path / "a.las")
    las.classification = np.array([1, 2, 1, 6, 7], dtype=np.uint8)
    las.write(tmp_path / "b.las")
    las.write(tmp_path / "c.las")
    assert fingerprint(str(tmp_path / "a.las")) != fingerprint(str(tmp_path / "b.las"))
    assert fingerprint(str(tmp_path / "b.las")) == fingerprint(str(tmp_path / "c.las"))
