"""`cloudbutton bench`: runs on several executors, checks outputs agree, writes the report; the scale model."""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest

from cloudbutton.core import CloudbuttonError
from cloudbutton.core.bench import bench_options, run_bench
from cloudbutton.core.cli import Command, Pipeline, common_options
from cloudbutton.core.demo import make_text, wordcount_job
from cloudbutton.core.projection import ServerlessModel, makespan, predict_local, project_serverless


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text")
    parser.add_argument("--out", required=True)
    parser.add_argument("--partitions", type=int, default=6)


def _sample(folder: str) -> list[str]:
    return ["wordcount", make_text(str(Path(folder) / "words.txt"), 1), "--partitions", "5"]


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _pipeline(fingerprint) -> Pipeline:
    build = lambda a: wordcount_job(a.text, a.out, a.partitions)  # noqa: E731
    return Pipeline("demo", "word count", {"wordcount": Command("count words", _add_arguments, build,
                                                                fingerprint, "counts.tsv")}, _sample)


def _options(tmp_path: Path, *extra: str) -> argparse.Namespace:
    return bench_options().parse_args(["--executors", "threads,processes", "--repeat", "2", "--workers", "2",
                                       "--out", str(tmp_path / "bench"), *extra])


def test_bench_on_sample_data_writes_report(tmp_path: Path):
    report = run_bench(_pipeline(_digest), [], _options(tmp_path), common_options())
    folder = tmp_path / "bench"
    assert report["identical"] and list(report["table"]) == ["threads", "processes"]
    saved = json.loads((folder / "bench.json").read_text())
    assert len(saved["runs"]) == 4 and all(r["kpi"]["schema"] == "cloudbutton.kpi/1" for r in saved["runs"])
    markdown = (folder / "bench.md").read_text()
    assert "| threads |" in markdown and "| processes |" in markdown and "Scale projection" in markdown
    assert "| storage requests | $ requests |" in markdown
    assert all("requests" in r["kpi"]["run"] and "requests_usd" in r["kpi"]["run"] for r in saved["runs"])
    assert [row["workers"] for row in saved["validation"]["rows"]] == [1, 2]
    assert all(abs(row["error"]) < 5 for row in saved["validation"]["rows"])
    assert [row["n"] for row in saved["projection"]] == [1, 10, 100, 1000]
    for png in ("bench.png", "projection.png"):
        assert (folder / png).read_bytes().startswith(b"\x89PNG")


def test_bench_fails_loudly_when_outputs_differ(tmp_path: Path):
    labels = iter(range(100))
    with pytest.raises(CloudbuttonError, match="outputs differ"):
        run_bench(_pipeline(lambda path: str(next(labels))), [], _options(tmp_path), common_options())
    assert json.loads((tmp_path / "bench" / "bench.json").read_text())["identical"] is False


def test_makespan_and_projection():
    assert makespan([3, 1, 1, 1], 2) == 3
    assert makespan([1, 1, 1, 1], 2) == 2
    assert makespan([], 4) == 0
    kpi = {"price_model": {"name": "p", "usd_per_request": 1e-6, "usd_per_gb_s": 1e-5, "billing_ms": 1},
           "run": {"start_cost_s": 0.5},
           "stages": [{"name": "a"}, {"name": "b"}],
           "tasks": [{"stage": "a", "partition": i, "status": "ok", "duration_s": 1.0, "bytes_read": 80_000_000,
                      "bytes_written": 0, "memory_mb": 1024} for i in range(4)]
           + [{"stage": "b", "partition": 0, "status": "ok", "duration_s": 2.0, "bytes_read": 0,
               "bytes_written": 0, "memory_mb": 2048}]}
    kpi["run"]["workers"] = 4
    kpi["stages"] = [{"name": "a", "wall_s": 1.25}, {"name": "b", "wall_s": 2.5}]
    assert predict_local(kpi, 2) == pytest.approx(0.5 + (0.25 + 2) + (0.5 + 2))
    model = ServerlessModel(invocation_s=0.1, cold_start_s=1.0, bandwidth_mb_s=80)
    one = project_serverless(kpi, 1, model)
    many = project_serverless(kpi, 4, model)
    assert one["wall_s"] == pytest.approx(0.1 + 1 + 8 + 0.1 + 2)
    assert many["wall_s"] == pytest.approx(0.1 + 1 + 2 + 0.1 + 2)
    assert one["cost_usd"] == pytest.approx(many["cost_usd"]) == pytest.approx(5e-6 + (4 * 2 + 2 * 2) * 1e-5)
