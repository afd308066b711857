"""``cloudbutton clean``: old run folders go (their scratch too), recent and running ones stay."""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pytest

from cloudbutton.core import Graph, RunOptions, TaskFailed, run
from cloudbutton.core.cli import main
from cloudbutton.core.clean import parse_age


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def broken(x: int) -> int:
    if x == 1:
        raise RuntimeError("broken on purpose")
    return x


def _failed_run(name: str, scratch: str | None = None) -> Path:
    """A failed run's kept folder (its marker in the runs folder), returned after the failure."""
    graph = Graph(name)
    graph.map("one", broken, over=[0, 1, 2])
    with pytest.raises(TaskFailed):
        run(graph, RunOptions(workers=2, retries=0, quiet=True, scratch=scratch))
    runs = Path(os.environ["CLOUDBUTTON_CACHE"]) / "runs"
    (marker,) = [p for p in runs.iterdir() if p.name.startswith(name + "-")]
    return marker


def _age(marker: Path, days: float) -> None:
    info = json.loads((marker / "run.json").read_text())
    info["updated"] = time.time() - days * 86400
    (marker / "run.json").write_text(json.dumps(info))


def test_parse_age():
    assert parse_age("7d") == 7 * 86400 and parse_age("12h") == 43200 and parse_age("90") == 90
    assert parse_age("1.5w") == 1.5 * 7 * 86400


def test_clean_older_than_removes_only_old_idle_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    old = _failed_run("old")
    recent = _failed_run("recent")
    elsewhere = tmp_path / "big-disk"
    old_elsewhere = _failed_run("elsewhere", scratch=str(elsewhere))
    running = _failed_run("running")
    for marker in (old, old_elsewhere, running):
        _age(marker, 8)
    scratch = json.loads((old_elsewhere / "run.json").read_text())["scratch"]
    assert scratch.startswith(str(elsewhere)) and os.listdir(scratch)  # task outputs kept for --resume
    assert json.loads((old / "run.json").read_text())["status"] == "failed"

    assert main(["clean", "--older-than", "7d", "--dry-run"]) == 0
    assert "would remove 3 run folder(s)" in capsys.readouterr().out
    assert old.exists()

    digests = Path(os.environ["CLOUDBUTTON_CACHE"]) / "digests" / "ab"
    digests.mkdir(parents=True)
    for name, days in (("old", 8), ("new", 1)):
        (digests / name).write_text("123:abc")
        os.utime(digests / name, (time.time() - days * 86400,) * 2)
    with open(running / "lock", "a+") as lock:  # a live run holds its folder's lock
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["clean", "--older-than", "7d"]) == 0
    assert "removed 2 run folder(s)" in capsys.readouterr().out
    assert not old.exists() and not old_elsewhere.exists() and not os.path.exists(scratch)
    assert recent.exists() and running.exists()
    assert sorted(os.listdir(digests)) == ["new"]  # cached input digests of the same age go too

    assert main(["clean"]) == 0  # no age: every idle run folder
    assert not recent.exists() and not running.exists()


def test_clean_refuses_a_bad_age(capsys: pytest.CaptureFixture[str]):
    assert main(["clean", "--older-than", "a week"]) == 2
    assert "--older-than" in capsys.readouterr().err
