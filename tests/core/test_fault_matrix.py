"""Fault injection on every executor: a task raises, kills its worker, hangs or over-allocates.

Each case ends with the right answer, or (retries exhausted) one line naming
the stage, the partition and the cause; every attempt is a KPI record.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudbutton.core import Graph, RunOptions, TaskFailed, run

FAULTY = 2  # the partition that misbehaves
EXPECTED = sum(x * x for x in range(4))


def faulty(x: int, *, fault: str, marker: str, always: bool = False) -> int:
    """Square ``x``; partition 2 misbehaves once (a marker file remembers it across processes) or always."""
    if x == FAULTY and (always or not os.path.exists(marker)):
        Path(marker).touch()
        if fault == "raise":
            raise RuntimeError("injected failure")
        if fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "sleep":
            time.sleep(4)
        if fault == "memory":
            import numpy as np

            hog = np.ones(300 * 2**20 // 8)  # 300 MB, every page touched
            time.sleep(1)
            return int(hog[0])
    return x * x


def total(values: list[int]) -> int:
    return sum(values)


def _run(executor: str, tmp_path: Path, fault: str, *, always: bool = False, retries: int = 2, **options):
    graph = Graph("faults")
    graph.map("square", faulty, over=list(range(4)),
              params={"fault": fault, "marker": str(tmp_path / "marker"), "always": always})
    graph.reduce("total", total, over="square")
    return run(graph, RunOptions(executor=executor, workers=2, retries=retries, quiet=True, **options))


def _attempts_of_faulty(result) -> list[tuple[int, str]]:
    return [(t["attempt"], t["status"]) for t in result.kpi["tasks"]
            if t["stage"] == "square" and t["partition"] == FAULTY]


def _error_of_first(result) -> str:
    return next(t["error"] for t in result.kpi["tasks"] if t["stage"] == "square" and t["partition"] == FAULTY)


CASES = [
    *[(executor, "raise", "RuntimeError: injected failure") for executor in ("threads", "processes", "lithops", "spark")],
    ("processes", "kill", "worker lost: its process was killed by SIGKILL"),
    ("lithops", "kill", "worker lost: MemoryError"),
    ("spark", "kill", "worker lost: Spark task attempt failed"),
    *[(executor, "sleep", "TaskTimeout: timed out after 1 s") for executor in ("threads", "processes", "lithops", "spark")],
]


@pytest.mark.parametrize(("executor", "fault", "cause"), CASES, ids=[f"{e}-{f}-once" for e, f, _ in CASES])
def test_a_task_failing_once_is_retried_and_the_run_succeeds(executor, fault, cause, tmp_path: Path):
    result = _run(executor, tmp_path, fault, task_timeout_s=1 if fault == "sleep" else None)
    assert result.value == EXPECTED
    assert _attempts_of_faulty(result) == [(0, "failed"), (1, "ok")]
    assert cause in _error_of_first(result)
    others = [t for t in result.kpi["tasks"] if (t["stage"], t["partition"]) != ("square", FAULTY)]
    assert sorted((t["stage"], t["partition"], t["attempt"], t["error"]) for t in others) == [
        ("square", p, 0, None) for p in (0, 1, 3)] + [("total", 0, 0, None)]


EXHAUSTED = [
    ("processes", "kill", 2, "worker lost: its process was killed by SIGKILL"),
    ("lithops", "kill", 1, "worker lost: MemoryError"),
    ("spark", "kill", 2, "worker lost: Python worker exited unexpectedly (crashed)"),  # Spark aborts the job
    ("spark", "kill", 1, "worker lost: Spark task attempt failed"),  # the core stops Spark's extra attempt
    ("threads", "sleep", 1, "TaskTimeout: timed out after 1 s (thread abandoned"),
    ("processes", "memory", 1, "task exceeded 100 MB"),
]


@pytest.mark.parametrize(("executor", "fault", "retries", "cause"), EXHAUSTED,
                         ids=[f"{e}-{f}-retries{r}" for e, f, r, _ in EXHAUSTED])
def test_a_task_failing_every_attempt_fails_the_run_in_one_line(executor, fault, retries, cause, tmp_path: Path):
    with pytest.raises(TaskFailed) as info:
        _run(executor, tmp_path, fault, always=True, retries=retries, memory_mb=100,
             task_timeout_s=1 if fault == "sleep" else None)
    message = str(info.value)
    assert message.startswith(f"stage 'square' partition {FAULTY} failed after {retries + 1} attempt(s): ")
    assert cause in message and "\n" not in message
    assert (info.value.stage, info.value.partition, info.value.attempts) == ("square", FAULTY, retries + 1)


_BALLAST: list = []  # driver memory the forked workers inherit


def reads_ballast(x: int) -> int:
    return int(_BALLAST[0][:: 4096 // 8].sum()) + x  # every page read, none written


def test_memory_shared_with_the_driver_does_not_count_against_a_task(tmp_path: Path):
    """A forked worker's resident size includes the driver's pages; only what the task allocates counts."""
    import numpy as np

    _BALLAST.append(np.ones(200 * 2**20 // 8))
    try:
        graph = Graph("ballast").map("read", reads_ballast, over=[0, 1])
        result = run(graph, RunOptions(executor="processes", workers=2, memory_mb=100, retries=0, quiet=True))
    finally:
        _BALLAST.clear()
    pages = 200 * 2**20 // 4096
    assert result.value == [pages, pages + 1]
    assert max(t["peak_rss_bytes"] for t in result.kpi["tasks"]) > 200 * 2**20


def stuck_in_native_code_once(x: int, *, marker: str) -> int:
    if x == FAULTY and not os.path.exists(marker):
        Path(marker).touch()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # the task's own alarm cannot stop it
        time.sleep(30)
    return x * x


def test_processes_kill_a_worker_its_alarm_cannot_stop(tmp_path: Path):
    graph = Graph("stuck").map("square", stuck_in_native_code_once, over=list(range(4)),
                               params={"marker": str(tmp_path / "marker")})
    result = run(graph, RunOptions(executor="processes", workers=2, task_timeout_s=1, quiet=True))
    assert result.value == [x * x for x in range(4)]
    assert _attempts_of_faulty(result) == [(0, "failed"), (1, "ok")]
    assert _error_of_first(result) == "TaskTimeout: timed out after 1 s (worker process stopped)"


_DRIVER = """
import os, sys, time
from cloudbutton.core import Graph, RunOptions, run

def hang(x, *, folder):
    open(os.path.join(folder, f"{os.getpid()}.pid"), "w").close()
    time.sleep(120)
    return x

run(Graph("hang").map("hang", hang, over=[0, 1], params={"folder": sys.argv[1]}),
    RunOptions(executor=sys.argv[2], workers=2, quiet=True))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_processes_workers_die_with_a_killed_driver(tmp_path: Path):
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path), "processes"])
    try:
        assert _wait_for(lambda: len(list(tmp_path.glob("*.pid"))) == 2, 60), "both tasks started"
        workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
        assert all(_alive(pid) for pid in workers)
        driver.kill()
        driver.wait()
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), 10), "workers outlived the driver"
    finally:
        driver.kill()


_FAILING_DRIVER = """
import os, sys, time
from pathlib import Path
from cloudbutton.core import Graph, RunOptions, TaskFailed, run

def quick_or_stuck(x, *, folder):
    if x == 0:
        Path(folder, f"{os.getpid()}.pid").touch()
        time.sleep(120)
    else:
        while not list(Path(folder).glob("*.pid")):
            time.sleep(0.05)
    raise RuntimeError("the other task fails")

try:
    run(Graph("stuck").map("work", quick_or_stuck, over=[0, 1], params={"folder": sys.argv[1]}),
        RunOptions(executor="lithops", workers=2, retries=0, quiet=True))
except TaskFailed as exc:
    print(exc)
"""


def test_a_failed_lithops_run_does_not_wait_for_its_running_calls(tmp_path: Path):
    """Run in a process of its own: Lithops' state after killing a running call must not reach other tests."""
    script = tmp_path / "driver.py"
    script.write_text(_FAILING_DRIVER)
    finished = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                              timeout=100)  # the stuck call sleeps 120 s
    assert finished.stdout.startswith("stage 'work' partition 1 failed after 1 attempt(s): RuntimeError")
    stuck = [int(p.stem) for p in tmp_path.glob("*.pid")]
    assert len(stuck) == 1 and _wait_for(lambda: not _alive(stuck[0]), 10), "the running call was stopped"
