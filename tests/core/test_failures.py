"""Retries, a task that keeps failing, timeouts and atomic outputs."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from cloudbutton.core import Graph, InputError, RunOptions, TaskFailed, run
from cloudbutton.core.cli import main
from cloudbutton.core.storage import atomic_output


def flaky_square(x: int, *, counter_dir: str, failures: int) -> int:
    """Fails ``failures`` times for x == 3 (counted in files, so it works across processes)."""
    if x == 3:
        marker = Path(counter_dir) / "attempts"
        seen = int(marker.read_text()) if marker.exists() else 0
        marker.write_text(str(seen + 1))
        if seen < failures:
            raise RuntimeError(f"transient failure {seen + 1}")
    return x * x


def write_total(values: list[int], *, out: str) -> int:
    with atomic_output(out) as tmp:
        Path(tmp).write_text(str(sum(values)))
    return sum(values)


def always_fails(x: int) -> int:
    if x == 2:
        raise ValueError("bad record 42")
    return x


def sleeps(x: int) -> int:
    time.sleep(8 if x == 1 else 0)
    return x


def bad_input(x: int) -> int:
    raise InputError("/data/sample.bam", "truncated BGZF block")


def _graph(fn, out: Path, **params) -> Graph:
    graph = Graph("failures")
    graph.map("square", fn, over=list(range(5)), params=params)
    graph.reduce("total", write_total, over="square", params={"out": str(out)})
    return graph


@pytest.mark.parametrize("executor", ["threads", "processes", "lithops"])
def test_task_failing_twice_succeeds_with_two_retries(executor, tmp_path: Path):
    out = tmp_path / "total.txt"
    result = run(_graph(flaky_square, out, counter_dir=str(tmp_path), failures=2),
                 RunOptions(executor=executor, workers=2, retries=2, quiet=True))
    assert result.value == sum(x * x for x in range(5)) and out.read_text() == "30"
    attempts = [t for t in result.kpi["tasks"] if t["stage"] == "square" and t["partition"] == 3]
    assert [(t["attempt"], t["status"]) for t in attempts] == [(0, "failed"), (1, "failed"), (2, "ok")]
    assert "transient failure 1" in attempts[0]["error"]
    assert result.kpi["run"]["retries"] == 2 and result.kpi["run"]["attempts"] == 5 + 2 + 1


def test_not_enough_retries_fails(tmp_path: Path):
    with pytest.raises(TaskFailed, match="after 2 attempt"):
        run(_graph(flaky_square, tmp_path / "t.txt", counter_dir=str(tmp_path), failures=2),
            RunOptions(workers=2, retries=1, quiet=True))


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_always_failing_task_stops_the_run_and_leaves_no_output(executor, tmp_path: Path):
    out = tmp_path / "total.txt"
    with pytest.raises(TaskFailed) as info:
        run(_graph(always_fails, out), RunOptions(executor=executor, workers=2, quiet=True,
                                                   kpi_path=str(tmp_path / "kpi.json")))
    message = str(info.value)
    assert "stage 'square'" in message and "partition 2" in message
    assert "ValueError: bad record 42" in message and "after 3 attempt" in message
    assert "Traceback" in info.value.traceback
    assert not out.exists()
    kpi = json.loads((tmp_path / "kpi.json").read_text())  # a failed run is measured too
    assert kpi["run"]["ok"] is False and "partition 2" in kpi["run"]["error"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "attempts") == [
        "kpi.json", "kpi.timeline.png", "kpi.trace.json"]


def test_failure_in_the_writing_task_leaves_no_partial_file(tmp_path: Path):
    out = tmp_path / "result.txt"
    with pytest.raises(RuntimeError):
        with atomic_output(str(out)) as tmp:
            Path(tmp).write_text("half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_task_timeout(executor, tmp_path: Path):
    graph = Graph("slow")
    graph.map("sleep", sleeps, over=[0, 1])
    started = time.monotonic()
    with pytest.raises(Exception, match="time"):
        run(graph, RunOptions(executor=executor, workers=2, retries=0, task_timeout_s=0.5, quiet=True))
    assert time.monotonic() - started < 7.5


def test_bad_input_in_a_task_is_reported_as_one_line_without_retries(tmp_path: Path):
    graph = Graph("inputs")
    graph.map("read", bad_input, over=[0])
    with pytest.raises(InputError) as info:
        run(graph, RunOptions(workers=1, retries=2, quiet=True))
    assert str(info.value) == "/data/sample.bam: truncated BGZF block"


def test_cli_failure_is_one_line_with_nonzero_exit(tmp_path: Path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--size-mb", "0.01", "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "--workers must be at least 1" in err[0]
    assert os.environ.get("OPENBLAS_NUM_THREADS") == "1"


def killed_worker(x: int) -> int:
    if x == 1:
        os.kill(os.getpid(), 9)
    return x


def test_a_killed_worker_fails_its_own_task_by_name_after_its_retries(tmp_path: Path):
    graph = Graph("crash")
    graph.map("work", killed_worker, over=[0, 1, 2])
    with pytest.raises(TaskFailed, match=r"^stage 'work' partition 1 failed after 3 attempt\(s\): worker lost: "):
        run(graph, RunOptions(executor="processes", workers=1, quiet=True))
