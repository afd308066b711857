"""report.html: written beside kpi.json by every job (failed ones too), rebuilt by `cloudbutton report`,
rendered in headless Chromium with no network request."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudbutton.core import Graph, Job, TaskFailed, run_job
from cloudbutton.core.cli import main
from cloudbutton.core.storage import atomic_output

from ..browser import open_report


def square_failing_once(x: int, *, marker: str) -> int:
    """x * x; x == 3 fails on its first attempt (a file remembers it, whatever the executor)."""
    if x == 3 and not Path(marker).exists():
        Path(marker).write_text("failed once")
        raise RuntimeError("transient failure of partition 3")
    return x * x


def always_fails(x: int) -> int:
    if x == 2:
        raise ValueError("bad record 42")
    return x


def write_total(values: list[int], *, out: str) -> int:
    with atomic_output(out) as tmp:
        Path(tmp).write_text(str(sum(values)))
    return sum(values)


def _job(fn, folder: Path, **params) -> Job:
    graph = Graph("reporttest.squares")
    graph.map("square", fn, over=list(range(6)), params=params)
    graph.reduce("total", write_total, over="square", params={"out": str(folder / "total.txt")})
    return Job(graph, str(folder / "total.txt"))


def test_report_of_a_run_with_a_retry(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    result = run_job(_job(square_failing_once, folder, marker=str(tmp_path / "marker")),
                     executor="threads", workers=2, retries=1, quiet=True)
    assert result.value == 55
    report = folder / "report.html"
    assert report.is_file()
    page = open_report(report, tmp_path / "report.png")
    assert page.sections == ["Run", "Stages", "Task timeline"]
    assert page.requests == [] and page.errors == [] and page.broken_images == 0
    assert len(page.task_titles) == len(result.kpi["tasks"]) == 8  # 6 squares + 1 retry + the total
    assert sum(title.startswith("square[3] attempt 0 failed") for title in page.task_titles) == 1
    assert "transient failure of partition 3" in page.text and "retries\n1" in page.text
    assert (tmp_path / "report.png").stat().st_size > 10_000

    html = report.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    rebuilt = tmp_path / "again.html"
    assert main(["report", str(folder / "kpi.json"), "-o", str(rebuilt)]) == 0
    assert rebuilt.read_text() == html  # the page depends on kpi.json alone
    assert json.loads((folder / "kpi.json").read_text())["run"]["options"]["output"] == str(folder / "total.txt")


def test_failed_run_leaves_a_report(tmp_path: Path) -> None:
    folder = tmp_path / "failed"
    with pytest.raises(TaskFailed):
        run_job(_job(always_fails, folder), executor="threads", workers=2, retries=0, quiet=True)
    page = open_report(folder / "report.html", tmp_path / "failed.png")
    assert page.requests == [] and page.sections[0] == "Run"
    assert "failed" in page.text and "bad record 42" in page.text
    assert any(title.startswith("square[2] attempt 0 failed") for title in page.task_titles)


def test_report_of_a_bad_kpi_file_is_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "kpi.json"
    bad.write_text('{"not": "a kpi"}')
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "kpi.json" in err
    assert not (tmp_path / "report.html").exists()


def _wordcount_args(parser) -> None:
    parser.add_argument("text")
    parser.add_argument("--out", required=True)


def test_bench_page_in_browser(tmp_path: Path) -> None:
    from cloudbutton.core.bench import bench_options, run_bench
    from cloudbutton.core.cli import Command, Pipeline, common_options
    from cloudbutton.core.demo import make_text, wordcount_job

    command = Command("count words", _wordcount_args, lambda a: wordcount_job(a.text, a.out, 4),
                      lambda out: Path(out).read_text(), "counts.tsv")
    pipeline = Pipeline("demo", "word count", {"wordcount": command})
    options = bench_options().parse_args(["--executors", "threads,processes", "--repeat", "1", "--workers", "2",
                                          "--out", str(tmp_path / "bench")])
    report = run_bench(pipeline, ["wordcount", make_text(str(tmp_path / "words.txt"), 0.5)], options,
                       common_options())
    page = open_report(tmp_path / "bench" / "bench.html", tmp_path / "bench.png")
    assert page.sections == ["Executors side by side", "Where the time goes (median stage wall, s)",
                             "Task timelines (first run of each executor)",
                             "Scale projection (a model, not a measurement)", "Model check against measured local runs"]
    assert page.requests == [] and page.errors == [] and page.broken_images == 0
    assert page.images == 2  # bench.png and projection.png, inline
    assert len(page.task_titles) == sum(len(r["kpi"]["tasks"]) for r in
                                        {r["executor"]: r for r in reversed(report["runs"])}.values())
    for row in report["projection"]:
        assert f"{row['n']}\t{row['serverless_wall_s']:.2f}\t{row['serverless_cost_usd']:.6f}" in page.text
