"""kpi.json schema, cost model, timeline PNG, Chrome trace and the `kpi` commands."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudbutton.core import Graph, PriceModel, RunOptions, TaskFailed, run
from cloudbutton.core.cli import main
from cloudbutton.core.demo import make_text, wordcount_graph

RUN_FIELDS = {
    "graph": str, "executor": str, "workers": int, "started": float, "ended": float, "ok": bool,
    "start_cost_s": float, "options": dict, "wall_s": float, "tasks": int, "attempts": int, "retries": int,
    "task_time_s": dict, "cpu_s": float, "parallel_efficiency": float, "peak_rss_bytes": int,
    "bytes_read": int, "bytes_written": int, "cold_starts": int, "gb_s": float, "cost_usd": float,
    "requests": dict, "requests_usd": float, "compute_usd": float, "driver_requests": dict,
}
STAGE_FIELDS = {"name": str, "kind": str, "partitions": int, "memory_mb": int, "start_ts": float,
                "end_ts": float, **{k: RUN_FIELDS[k] for k in ("wall_s", "tasks", "task_time_s", "cpu_s",
                                                                "parallel_efficiency", "gb_s", "cost_usd")}}
TASK_FIELDS = {"stage": str, "partition": int, "attempt": int, "status": str, "worker": str, "cold_start": bool,
               "submit_ts": float, "start_ts": float, "end_ts": float, "duration_s": float, "cpu_s": float,
               "peak_rss_bytes": int, "bytes_read": int, "bytes_written": int, "memory_mb": int,
               "requests": dict, "init_s": float}
DISTRIBUTION = {"count", "sum", "min", "median", "p90", "max", "mean"}


def _check(record: dict, fields: dict) -> None:
    for name, kind in fields.items():
        assert name in record, f"missing {name}"
        assert isinstance(record[name], kind) or (kind is float and isinstance(record[name], int)), name


@pytest.fixture(scope="module")
def kpi_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kpi")
    text = make_text(str(folder / "words.txt"), 2)
    run(wordcount_graph(text, str(folder / "counts.tsv"), 6, 3),
        RunOptions(workers=2, memory_mb=2048, quiet=True, kpi_path=str(folder / "kpi.json")))
    return folder


def test_kpi_json_schema(kpi_run: Path):
    kpi = json.loads((kpi_run / "kpi.json").read_text())
    assert kpi["schema"] == "cloudbutton.kpi/1"
    _check(kpi["run"], RUN_FIELDS)
    assert set(kpi["run"]["task_time_s"]) == DISTRIBUTION
    assert [s["name"] for s in kpi["stages"]] == ["count", "sum", "write"]
    for stage in kpi["stages"]:
        _check(stage, STAGE_FIELDS)
    assert len(kpi["tasks"]) == 6 + 3 + 1
    for task in kpi["tasks"]:
        _check(task, TASK_FIELDS)
        assert task["submit_ts"] <= task["start_ts"] <= task["end_ts"]
        assert task["memory_mb"] == 2048 and task["peak_rss_bytes"] > 10_000_000
    run_ = kpi["run"]
    assert run_["ok"] and run_["workers"] == 2 and 0 < run_["parallel_efficiency"] <= 1
    assert run_["bytes_read"] >= 2_000_000, "the count tasks read the whole input"
    assert run_["task_time_s"]["sum"] == pytest.approx(sum(t["duration_s"] for t in kpi["tasks"]))
    assert kpi["price_model"] == {"name": "aws-lambda-x86+s3", "usd_per_request": 2e-7,
                                  "usd_per_gb_s": 0.0000166667, "billing_ms": 1, "usd_per_1k_writes": 0.005,
                                  "usd_per_1k_reads": 0.0004, "init_limit_s": 10.0, "as_of": "2026-11-30"}
    assert all(task["init_s"] == 0 for task in kpi["tasks"])  # threads run in the driver: no function INIT
    assert run_["requests"] == {k: 0 for k in ("get", "head", "put", "copy", "list", "delete")}  # all local


def test_timeline_png_and_chrome_trace(kpi_run: Path):
    png = (kpi_run / "kpi.timeline.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    trace = json.loads((kpi_run / "kpi.trace.json").read_text())
    tasks = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] != "stage"]
    assert len(tasks) == 10 and all(e["dur"] >= 0 for e in tasks)


def test_cost_model_bills_per_request_and_rounded_up_gb_seconds():
    prices = PriceModel()
    attempts = [{"memory_mb": 1024, "duration_s": 0.0101}, {"memory_mb": 2048, "duration_s": 1.0}]
    cost = prices.cost(attempts)
    assert cost["gb_s"] == pytest.approx(1 * 0.011 + 2 * 1.0)
    assert cost["cost_usd"] == pytest.approx(2 * 0.2e-6 + cost["gb_s"] * 0.0000166667)


def test_cost_model_bills_init_lithops_function_time_and_storage_requests():
    prices = PriceModel()
    attempts = [{"memory_mb": 1024, "duration_s": 0.5, "function_s": 0.8, "cold_start": True, "init_s": 1.2,
                 "requests": {"get": 1500, "head": 500, "put": 30}},
                {"memory_mb": 1024, "duration_s": 0.5, "function_s": 0.3, "cold_start": False, "init_s": 0.0,
                 "requests": {"copy": 10, "list": 2, "delete": 40}},
                {"memory_mb": 1024, "duration_s": 0.1, "cold_start": True, "init_s": 60.0}]
    cost = prices.cost(attempts, driver_requests={"put": 8})
    assert cost["gb_s"] == pytest.approx((0.8 + 1.2) + 0.5 + (0.1 + 10.0))  # INIT capped at AWS's 10 s
    assert cost["requests_usd"] == pytest.approx(2000 / 1000 * 0.0004 + 50 / 1000 * 0.005)  # DELETE is free
    assert cost["cost_usd"] == pytest.approx(cost["compute_usd"] + cost["requests_usd"])
    cheaper = PriceModel(usd_per_1k_reads=0.0, usd_per_1k_writes=0.0)  # overridable
    assert cheaper.cost(attempts)["requests_usd"] == 0


def test_kpi_show_and_compare(kpi_run: Path, capsys):
    assert main(["kpi", "show", str(kpi_run / "kpi.json")]) == 0
    shown = capsys.readouterr().out
    assert "demo.wordcount on threads (2 workers)" in shown and "count" in shown and "GB-s" in shown
    assert main(["kpi", "compare", str(kpi_run / "kpi.json"), str(kpi_run / "kpi.json")]) == 0
    compared = capsys.readouterr().out
    assert "wall_s" in compared and "1.00x" in compared and "stage count wall_s" in compared
    assert main(["kpi", "show", str(kpi_run / "missing.json")]) == 1


def fails_at_two(x: int) -> int:
    if x == 2:
        raise ValueError(f"bad record {x}")
    return x


def test_failed_run_writes_kpi_json_with_every_attempt_and_kpi_show_says_so(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(tmp_path / "cache"))
    graph = Graph("failing")
    graph.map("parse", fails_at_two, over=list(range(4)))
    kpi_path = tmp_path / "kpi.json"
    with pytest.raises(TaskFailed):
        run(graph, RunOptions(executor="processes", workers=2, retries=1, quiet=True, kpi_path=str(kpi_path)))
    kpi = json.loads(kpi_path.read_text())
    assert kpi["run"]["ok"] is False
    assert "stage 'parse' partition 2" in kpi["run"]["error"] and "bad record 2" in kpi["run"]["error"]
    failed = [t for t in kpi["tasks"] if t["partition"] == 2]
    assert [(t["attempt"], t["status"]) for t in failed] == [(0, "failed"), (1, "failed")]
    assert all("bad record 2" in t["error"] for t in failed)
    assert kpi["stages"][0]["end_ts"] >= kpi["stages"][0]["start_ts"]
    assert (tmp_path / "kpi.timeline.png").stat().st_size > 0 and (tmp_path / "kpi.trace.json").exists()
    assert main(["kpi", "show", str(kpi_path)]) == 0
    assert capsys.readouterr().out.startswith("FAILED: stage 'parse' partition 2 failed after 2 attempt(s)")


INTERRUPTED = '''
import sys, time
from pathlib import Path
from cloudbutton.core import Graph, RunOptions, run

def wait(x):
    Path(sys.argv[1], f"started-{x}").touch()
    time.sleep(60)
    return x

graph = Graph("interrupted")
graph.map("wait", wait, over=[0, 1])
run(graph, RunOptions(executor="processes", workers=2, quiet=True, kpi_path=sys.argv[2]))
'''


def test_sigterm_interrupted_run_writes_kpi_json(tmp_path: Path):
    script, kpi_path = tmp_path / "driver.py", tmp_path / "kpi.json"
    script.write_text(INTERRUPTED)
    env = {**os.environ, "CLOUDBUTTON_CACHE": str(tmp_path / "cache"), "OPENBLAS_NUM_THREADS": "1"}
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(kpi_path)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list(tmp_path.glob("started-*")) and time.time() < deadline:
        time.sleep(0.05)
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=30) != 0
    kpi = json.loads(kpi_path.read_text())
    assert kpi["run"]["ok"] is False and kpi["run"]["error"] == "interrupted (SIGTERM)"
    (marker,) = (tmp_path / "cache" / "runs").iterdir()  # kept for --resume
    assert json.loads((marker / "run.json").read_text())["status"] == "failed"
