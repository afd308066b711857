"""Timeline views of a run: a PNG (one row per worker, tasks coloured by stage) and Chrome-trace JSON."""
from __future__ import annotations

import json
from typing import Any


def worker_rows(tasks: list[dict[str, Any]]) -> dict[str, int]:
    """Row number of every worker, in order of first activity."""
    rows: dict[str, int] = {}
    for task in sorted(tasks, key=lambda t: t["start_ts"]):
        rows.setdefault(task["worker"], len(rows))
    return rows


def chrome_trace(kpi: dict[str, Any]) -> dict[str, Any]:
    """Chrome/Perfetto trace events: one complete event per task attempt, one track per worker."""
    origin = kpi["run"]["started"]
    rows = worker_rows(kpi["tasks"])
    events: list[dict[str, Any]] = [
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": row, "args": {"name": worker}}
        for worker, row in rows.items()
    ]
    for task in kpi["tasks"]:
        events.append({
            "name": f"{task['stage']}[{task['partition']}]", "cat": task["stage"], "ph": "X",
            "ts": (task["start_ts"] - origin) * 1e6, "dur": task["duration_s"] * 1e6,
            "pid": 1, "tid": rows[task["worker"]],
            "args": {k: task[k] for k in ("attempt", "status", "cpu_s", "peak_rss_bytes",
                                          "bytes_read", "bytes_written", "cold_start")},
        })
    for stage in kpi["stages"]:
        events.append({"name": stage["name"], "cat": "stage", "ph": "X", "pid": 0, "tid": 0,
                       "ts": (stage["start_ts"] - origin) * 1e6,
                       "dur": (stage["end_ts"] - stage["start_ts"]) * 1e6})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "metadata": {"graph": kpi["run"]["graph"], "executor": kpi["run"]["executor"]}}


def plot_timeline(kpi: dict[str, Any], ax: Any = None) -> Any:
    """Draw the task timeline on ``ax`` (a new figure when None); returns the axes.

    Uses matplotlib's object API only, so it never changes the caller's backend
    (a notebook keeps its inline plots).
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = worker_rows(kpi["tasks"])
    if ax is None:
        ax = Figure(figsize=(10, 1.5 + 0.35 * max(1, len(rows)))).add_subplot()
    origin = kpi["run"]["started"]
    colours = matplotlib.colormaps["tab10"]
    names = [s["name"] for s in kpi["stages"]]
    spans: dict[tuple[str, str, bool], list[tuple[float, float]]] = {}
    for task in kpi["tasks"]:
        key = (task["worker"], task["stage"], task["status"] == "ok")
        spans.setdefault(key, []).append((task["start_ts"] - origin, task["duration_s"]))
    for (worker, stage, ok), bars in spans.items():
        colour = colours(names.index(stage) % 10) if stage in names else "grey"
        ax.broken_barh(bars, (rows[worker] - 0.4, 0.8), facecolors=colour,
                       edgecolors=colour if ok else "black", hatch=None if ok else "//", linewidth=0.5)
    handles = [Patch(color=colours(i % 10), label=name) for i, name in enumerate(names)]
    ax.set_yticks(range(len(rows)), [f"w{r}" for r in rows.values()])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("seconds since run start")
    ax.set_ylabel("worker")
    run = kpi["run"]
    ax.set_title(f"{run['graph']} on {run['executor']} ({run['workers']} workers): {run['wall_s']:.2f} s")
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize="small", ncol=min(len(handles), 5))
    return ax


def write_timeline_png(kpi: dict[str, Any], path: str) -> None:
    """Save :func:`plot_timeline` as a PNG."""
    ax = plot_timeline(kpi)
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=100, format="png")


def write_chrome_trace(kpi: dict[str, Any], path: str) -> None:
    """Save :func:`chrome_trace` as JSON (open it in chrome://tracing or ui.perfetto.dev)."""
    with open(path, "w") as handle:
        json.dump(chrome_trace(kpi), handle)
