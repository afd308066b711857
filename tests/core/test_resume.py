"""Resume: a killed run continues from its finished tasks; keys decide exactly what re-runs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cloudbutton.core import Graph, Job, RunOptions, TaskFailed, run_job, storage
from cloudbutton.core.journal import default_runs_dir
from cloudbutton.core.storage import atomic_output


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run folders under the test's own cache, never the user's."""
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# The driver of the kill test: stage 1 squares, stage 2 blocks while the "slow" flag exists, stage 3
# writes the result.  Every task leaves a marker file, so the test counts what ran in which process.
DRIVER = '''
import json, os, sys, time
from pathlib import Path
from cloudbutton.core import Graph, Job, RunOptions, run_job
from cloudbutton.core.storage import atomic_output

MARKS = Path(sys.argv[2])


def square(x):
    (MARKS / f"first-{x}-{os.getpid()}-{time.monotonic_ns()}").touch()
    return x * x


def plus_one_when_released(x):
    (MARKS / f"second-{x}-{os.getpid()}-{time.monotonic_ns()}").touch()
    deadline = time.time() + 90
    while (MARKS / "slow").exists() and time.time() < deadline:
        time.sleep(0.05)
    return x + 1


def write(values, *, out):
    with atomic_output(out) as tmp:
        Path(tmp).write_text(json.dumps(values))
    return values


if __name__ == "__main__":
    executor, out = sys.argv[1], sys.argv[3]
    graph = Graph("resume-acceptance")
    graph.map("first", square, over=list(range(6)))
    graph.map("second", plus_one_when_released, over="first")
    graph.reduce("third", write, over="second", params={"out": out})
    run_job(Job(graph, out), RunOptions(executor=executor, workers=2, quiet=True, resume="--resume" in sys.argv))
'''


def _env(cache: Path) -> dict[str, str]:
    """The drivers' environment.  Lithops keeps its session id and executor count in environment
    variables: two drivers inheriting them from this process would get the same executor and job
    ids, and the second would read the first one's call results as its own."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("__LITHOPS_")}
    return {**inherited, "CLOUDBUTTON_CACHE": str(cache), "OPENBLAS_NUM_THREADS": "1",
            "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}


def _marks(folder: Path, stage: str) -> list[str]:
    return sorted(p.name for p in folder.glob(f"{stage}-*"))


@pytest.mark.parametrize("executor", ["processes", "lithops", "spark"])
def test_driver_killed_in_stage_2_resumes_without_rerunning_stage_1(executor: str, tmp_path: Path, cache: Path):
    script, marks, out = tmp_path / "driver.py", tmp_path / "marks", tmp_path / "out" / "result.json"
    script.write_text(DRIVER)
    marks.mkdir()
    (marks / "slow").touch()
    argv = [sys.executable, str(script), executor, str(marks), str(out)]
    driver = subprocess.Popen(argv, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while not _marks(marks, "second") and driver.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert driver.poll() is None, f"the driver ended before stage 2: {driver.stdout.read().decode()[-2000:]}"
    assert _marks(marks, "second"), "stage 2 never started"
    driver.send_signal(signal.SIGKILL)  # no clean-up of any kind
    driver.wait()
    first_run = _marks(marks, "first")
    assert len({name.split("-")[1] for name in first_run}) == 6 and not out.exists()
    (marks / "slow").unlink()

    resumed = subprocess.run([*argv, "--resume"], env=_env(cache), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _marks(marks, "first") == first_run  # not one stage-1 task ran again
    kpi = json.loads((out.parent / "kpi.json").read_text())
    assert out.exists(), (sorted(os.listdir(out.parent)), kpi["run"], kpi["tasks"], resumed.stdout, resumed.stderr)
    assert json.loads(out.read_text()) == [x * x + 1 for x in range(6)]  # what an uninterrupted run writes
    assert kpi["run"]["ok"] is True
    assert {s["name"]: s["reused"] for s in kpi["stages"]}["first"] == 6
    assert not os.listdir(cache / "runs")  # the successful resume removed its run folder


def _note(log: str, call: str) -> None:
    """One file per call in the folder ``log`` (a folder: never part of a task key)."""
    (Path(log) / f"{call}-{os.getpid()}-{time.monotonic_ns()}").touch()


def _calls(log: Path) -> list[str]:
    return sorted(name.rsplit("-", 2)[0] for name in os.listdir(log))


def square_counted(x: int, *, log: str) -> int:
    _note(log, f"square {x}")
    return x * x


def add(x: int, *, k: int, log: str) -> int:
    _note(log, f"add {x}")
    return x + k


def write_sum(values: list[int], *, out: str) -> int:
    with atomic_output(out) as tmp:
        Path(tmp).write_text(str(sum(values)))
    return sum(values)


def _three_stages(tmp_path: Path, k: int) -> Job:
    log, out = tmp_path / "calls", str(tmp_path / "out" / "sum.txt")
    log.mkdir(exist_ok=True)
    graph = Graph("resume-params")
    graph.map("square", square_counted, over=list(range(4)), params={"log": str(log)})
    graph.map("add", add, over="square", params={"k": k, "log": str(log)})
    graph.reduce("total", write_sum, over="add", params={"out": out})
    return Job(graph, out)


def _reused(result) -> dict[str, int]:
    return {s["name"]: s["reused"] for s in result.kpi["stages"]}


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_changed_parameter_reruns_exactly_the_tasks_it_reaches(executor: str, tmp_path: Path):
    options = RunOptions(executor=executor, workers=2, quiet=True, keep_scratch=True)
    first = run_job(_three_stages(tmp_path, 1), options)
    assert first.value == 14 + 4 and _reused(first) == {"square": 0, "add": 0, "total": 0}
    assert len(_calls(tmp_path / "calls")) == 8
    for name in os.listdir(tmp_path / "calls"):
        (tmp_path / "calls" / name).unlink()

    changed = run_job(_three_stages(tmp_path, 10), options, resume=True)
    assert changed.value == 14 + 40
    assert _reused(changed) == {"square": 4, "add": 0, "total": 0}
    assert _calls(tmp_path / "calls") == [f"add {x * x}" for x in range(4)]
    assert (tmp_path / "out" / "sum.txt").read_text() == "54"

    same = run_job(_three_stages(tmp_path, 10), options, resume=True)
    assert same.value == 54 and _reused(same) == {"square": 4, "add": 4, "total": 1}
    assert same.kpi["run"]["tasks"] == 0 and same.kpi["run"]["reused_tasks"] == 9


def length_of(path: str) -> int:
    return len(Path(path).read_bytes())


def double(n: int) -> int:
    return 2 * n


def _files_job(files: list[Path], out: Path) -> Job:
    graph = Graph("resume-files")
    graph.map("length", length_of, over=[str(f) for f in files])
    graph.map("double", double, over="length")
    graph.reduce("total", write_sum, over="double", params={"out": str(out)})
    return Job(graph, str(out))


def test_changed_input_file_reruns_only_its_tasks_and_a_touch_reruns_nothing(tmp_path: Path):
    files = [tmp_path / "a.txt", tmp_path / "b.txt"]
    files[0].write_text("aaaa")
    files[1].write_text("bb")
    out = tmp_path / "out" / "total.txt"
    options = RunOptions(workers=2, quiet=True, keep_scratch=True)
    assert run_job(_files_job(files, out), options).value == 12

    os.utime(files[0], ns=(time.time_ns() + 10**9,) * 2)  # newer timestamp, same content
    touched = run_job(_files_job(files, out), options, resume=True)
    assert touched.value == 12 and _reused(touched) == {"length": 2, "double": 2, "total": 1}

    files[1].write_text("bbbbbb")  # content changes: its task and everything downstream of it re-run
    changed = run_job(_files_job(files, out), options, resume=True)
    assert changed.value == 20 and out.read_text() == "20"
    assert _reused(changed) == {"length": 1, "double": 1, "total": 0}


def fails_unless_fixed(x: int, *, flag: str) -> int:
    if x == 4 and not Path(flag).exists():
        raise ValueError("not fixed yet")
    return x


def _fails_until_fixed(name: str, log: Path, flag: Path, out: Path) -> Graph:
    """square (logged) -> check (the value 4 fails until ``flag`` exists) -> total written to ``out``."""
    graph = Graph(name)
    graph.map("square", square_counted, over=list(range(4)), params={"log": str(log)})
    graph.map("check", fails_unless_fixed, over="square", params={"flag": str(flag)})
    graph.reduce("total", write_sum, over="check", params={"out": str(out)})
    return graph


def test_failed_run_keeps_its_folder_and_resume_runs_only_the_rest(tmp_path: Path, cache: Path):
    log, flag, out = tmp_path / "calls", tmp_path / "fixed", tmp_path / "out" / "sum.txt"
    log.mkdir()
    graph = _fails_until_fixed("resume-after-failure", log, flag, out)
    options = RunOptions(executor="processes", workers=2, retries=0, quiet=True)
    with pytest.raises(TaskFailed, match="not fixed yet"):
        run_job(Job(graph, str(out)), options)
    (folder,) = os.listdir(cache / "runs")
    assert json.loads((cache / "runs" / folder / "run.json").read_text())["status"] == "failed"
    assert len(_calls(log)) == 4

    flag.touch()
    result = run_job(Job(graph, str(out)), options, resume=True)
    assert result.value == 14 and len(_calls(log)) == 4
    assert _reused(result)["square"] == 4 and not os.listdir(cache / "runs")


def test_without_resume_a_run_starts_afresh_and_keep_scratch_keeps_the_folder(tmp_path: Path, cache: Path):
    options = RunOptions(workers=2, quiet=True)
    run_job(_three_stages(tmp_path, 1), options)
    assert os.listdir(default_runs_dir()) == []  # a successful run removes its own folder
    run_job(_three_stages(tmp_path, 1), options, keep_scratch=True)
    (kept,) = os.listdir(cache / "runs")
    assert (cache / "runs" / kept / "journal" / "square").is_dir()
    again = run_job(_three_stages(tmp_path, 1), options)  # no --resume: nothing reused
    assert _reused(again) == {"square": 0, "add": 0, "total": 0} and not os.listdir(cache / "runs")


def test_resume_with_the_journal_on_object_storage(s3_server, tmp_path: Path):
    """Outputs and records in an S3 bucket (a real server on loopback): the failed run's are reused."""
    storage.configure(s3_server.lithops_config)
    try:
        prefix = f"resume-{uuid.uuid4().hex[:8]}/"
        scratch = s3_server.uri(prefix + "scratch")
        log, flag, out = tmp_path / "calls", tmp_path / "fixed", tmp_path / "out" / "sum.txt"
        log.mkdir()
        graph = _fails_until_fixed("resume-s3", log, flag, out)
        options = RunOptions(workers=2, retries=0, quiet=True, lithops_config=s3_server.config_file, scratch=scratch)
        with pytest.raises(TaskFailed):
            run_job(Job(graph, str(out)), options)
        kept = s3_server.keys(prefix + "scratch")
        assert sum("/journal/square/" in key for key in kept) == 4
        flag.touch()
        result = run_job(Job(graph, str(out)), options, resume=True)
        assert result.value == 14 and _reused(result)["square"] == 4 and len(_calls(log)) == 4
        assert not s3_server.keys(prefix + "scratch")  # the successful run removed its scratch
    finally:
        storage.configure(None)


def scaled(x: int, *, table: str, log: str) -> int:
    with open(log, "a") as handle:  # a file the tasks write: named in the parameters, never part of a key
        handle.write(f"{x}\n")
    return x * int(Path(table).read_text())


def test_declared_inputs_named_in_parameters_count_by_content(tmp_path: Path):
    table, log, out = tmp_path / "factor.txt", tmp_path / "calls.log", tmp_path / "out" / "sum.txt"
    table.write_text("2")

    def job() -> Job:
        graph = Graph("resume-declared")
        graph.map("scale", scaled, over=list(range(4)), params={"table": str(table), "log": str(log)})
        graph.reduce("total", write_sum, over="scale", params={"out": str(out)})
        return Job(graph, str(out), inputs=[str(table)])

    options = RunOptions(workers=2, quiet=True, keep_scratch=True)
    assert run_job(job(), options).value == 12
    again = run_job(job(), options, resume=True)  # the log grew: still every task reused
    assert _reused(again) == {"scale": 4, "total": 1} and len(log.read_text().split()) == 4
    table.write_text("3")  # the declared input changed: every task that reads it re-runs
    changed = run_job(job(), options, resume=True)
    assert changed.value == 18 and _reused(changed) == {"scale": 0, "total": 0}


def write_side_files(n: int, *, folder: str) -> list[storage.Ref]:
    return [storage.store(x * x, f"{folder}/side-{x}.pkl") for x in range(n)]


def use_and_remove_side_files(parts: list[list[storage.Ref]], *, k: int, folder: str, out: str) -> int:
    total = sum(storage.load(ref) for refs in parts for ref in refs) * k
    with atomic_output(out) as tmp:
        Path(tmp).write_text(str(total))
    storage.delete_prefix(folder)  # like a staging folder removed once the output is published
    return total


def _side_files_job(tmp_path: Path, k: int) -> Job:
    folder, out = str(tmp_path / "staging"), str(tmp_path / "out" / "total.txt")
    graph = Graph("resume-side-files")
    graph.map("write", write_side_files, over=[3], params={"folder": folder})
    graph.reduce("use", use_and_remove_side_files, over="write", params={"k": k, "folder": folder, "out": out})
    return Job(graph, out)


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_task_whose_stored_output_points_to_removed_files_runs_again(executor: str, tmp_path: Path):
    """The journal reuses an output only while the files it refers to exist (Ref.needs)."""
    options = RunOptions(executor=executor, workers=2, quiet=True, keep_scratch=True)
    assert run_job(_side_files_job(tmp_path, 1), options).value == 5
    assert not (tmp_path / "staging").exists()
    again = run_job(_side_files_job(tmp_path, 2), options, resume=True)
    assert again.value == 10 and _reused(again) == {"write": 0, "use": 0}
