"""Graph declaration rules, the printed plan, and the CLI's discovery and common options."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cloudbutton.core import Graph
from cloudbutton.core.cli import build_parser, discover_pipelines, main
from cloudbutton.core.demo import wordcount_graph


def _identity(x):
    return x


def test_graph_rules():
    graph = Graph("g")
    graph.map("a", _identity, over=[1, 2, 3])
    with pytest.raises(ValueError, match="declared twice"):
        graph.map("a", _identity, over=[1])
    with pytest.raises(ValueError, match="unknown stage"):
        graph.reduce("r", _identity, over="missing")
    graph.shuffle("s", over="a", partitions=2)
    with pytest.raises(ValueError, match="one consumer"):
        graph.map("b", _identity, over="a")
    with pytest.raises(ValueError, match="must follow a map"):
        Graph("h").map("a", _identity, over=[1]).reduce("r", _identity, over="a").shuffle("s", over="r",
                                                                                           partitions=2)
    assert graph.partition_counts() == {"a": 3, "s": 2}


def test_plan_lists_stages_and_partitions(tmp_path: Path):
    text = tmp_path / "w.txt"
    text.write_bytes(b"a b\n" * 1000)
    plan = wordcount_graph(str(text), str(tmp_path / "o.tsv"), partitions=17, buckets=5).describe()
    lines = plan.splitlines()
    assert lines[0] == "graph demo.wordcount: 4 stages"
    assert "count" in lines[1] and "17 tasks" in lines[1]
    assert "shuffle" in lines[2] and "5 buckets" in lines[2]
    assert "reduce" in lines[4] and "1 tasks" in lines[4]


def test_cli_plan_runs_nothing(tmp_path: Path, capsys):
    (tmp_path / "words.txt").write_bytes(b"x y\n" * 10)
    assert main(["demo", "--out", str(tmp_path), "--partitions", "3", "--plan"]) == 0
    assert "3 tasks" in capsys.readouterr().out
    assert not (tmp_path / "counts.tsv").exists() and not (tmp_path / "kpi.json").exists()


def test_cli_runs_demo_and_writes_kpis_beside_output(tmp_path: Path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--size-mb", "0.2", "--workers", "2", "--quiet"]) == 0
    assert (tmp_path / "counts.tsv").stat().st_size > 0
    assert (tmp_path / "kpi.json").exists() and (tmp_path / "kpi.timeline.png").exists()
    assert capsys.readouterr().out == ""


def test_cli_resume_reuses_every_finished_task(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(tmp_path / "cache"))
    argv = ["demo", "--out", str(tmp_path / "demo"), "--size-mb", "0.2", "--workers", "2", "--quiet"]
    assert main([*argv, "--keep-scratch"]) == 0
    counts = (tmp_path / "demo" / "counts.tsv").read_text()
    assert len(os.listdir(tmp_path / "cache" / "runs")) == 1
    assert main([*argv, "--resume", "--partitions", "4", "--keep-scratch"]) == 0  # other ranges: no key matches
    kpi = json.loads((tmp_path / "demo" / "kpi.json").read_text())
    assert {s["name"]: s["reused"] for s in kpi["stages"]} == {"count": 0, "sum": 0, "write": 0}
    assert main([*argv, "--resume", "--partitions", "4"]) == 0
    kpi = json.loads((tmp_path / "demo" / "kpi.json").read_text())
    assert kpi["run"]["reused_tasks"] == 4 + 4 + 1 and kpi["run"]["tasks"] == 0
    assert (tmp_path / "demo" / "counts.tsv").read_text() == counts
    assert main(["kpi", "show", str(tmp_path / "demo" / "kpi.json")]) == 0
    assert "9 finished task(s) reused" in capsys.readouterr().out


def test_common_options_on_every_pipeline_command():
    pipelines = discover_pipelines()
    parser = build_parser(pipelines)
    help_text = parser.format_help()
    for name in [*pipelines, "kpi", "clean", "demo"]:
        assert name in help_text
    for name, pipeline in pipelines.items():
        for command in pipeline.commands:
            sub = parser._subparsers._group_actions[0].choices[name]  # noqa: SLF001 - argparse has no public API
            cmd_help = sub._subparsers._group_actions[0].choices[command].format_help()  # noqa: SLF001
            for option in ("--executor", "--workers", "--memory", "--lithops-config", "--spark-master",
                           "--kpi", "--plan", "--resume", "--overwrite", "--keep-scratch", "--scratch"):
                assert option in cmd_help, (name, command, option)
