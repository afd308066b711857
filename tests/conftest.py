"""Shared fixtures: the real public data beside the project, read in place."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("CLOUDBUTTON_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $CLOUDBUTTON_SHARED_DATA); the tests using it skip, with one reason, when it is
    missing (a clone of the project alone), and run wherever it is there (CI)."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(SKIP_REASON)
    return SHARED_DATA


SKIP_REASON = f"{SHARED_DATA} not found: real-data tests skipped"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One closing line: how many tests were skipped for want of the shared data, and why."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if SKIP_REASON in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests skipped: {SKIP_REASON} "
                                    "(they run where ../shared/data is beside the project, as in CI)")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A real S3 server (moto, 127.0.0.1, free port) for the whole session, with a Lithops config using
    the ``minio`` storage keys (``.lithops_config``, ``.config_file``); stopped by its PID at the end."""
    from tests.s3server import start_s3_server

    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()
