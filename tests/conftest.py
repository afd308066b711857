"""Shared fixtures: the real public data beside the project, read in place."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("CLOUDBUTTON_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $CLOUDBUTTON_SHARED_DATA); fails, never skips, when it is missing."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(f"shared data not found at {SHARED_DATA}: tests need ../shared/data beside the project "
                    "(or CLOUDBUTTON_SHARED_DATA pointing at it)", pytrace=False)
    return SHARED_DATA
