"""Fixtures of the core tests: the ~50 MB demo text, generated once per session."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cloudbutton.core.demo import make_text


@pytest.fixture(scope="session")
def words_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~50 MB generated text file."""
    return Path(make_text(str(tmp_path_factory.mktemp("demo") / "words.txt"), 50))


@pytest.fixture(scope="session")
def expected_counts(words_file: Path) -> dict[str, int]:
    """Word counts computed directly, without the graph."""
    return dict(sorted((w.decode(), n) for w, n in Counter(words_file.read_bytes().split()).items()))
