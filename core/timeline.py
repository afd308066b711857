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


#: matplotlib's tab10 palette, so the PNG and :func:`plot_timeline` colour stages alike.
TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
         (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def _ticks(span: float, count: int = 6) -> list[float]:
    """Round tick positions covering ``[0, span]``."""
    raw = max(span, 1e-6) / count
    step = next(m * 10 ** e for e in range(-6, 7) for m in (1, 2, 5) if m * 10 ** e >= raw)
    return [i * step for i in range(int(span / step) + 1)]


def write_timeline_png(kpi: dict[str, Any], path: str) -> None:
    """Save the task timeline as a PNG: one row per worker, one bar per task attempt.

    Drawn with Pillow rather than matplotlib: it runs after every run, and
    importing matplotlib alone would cost about a second of the run's wall time.
    """
    from PIL import Image, ImageDraw

    rows = worker_rows(kpi["tasks"])
    names = [s["name"] for s in kpi["stages"]]
    origin, run = kpi["run"]["started"], kpi["run"]
    span = max([run["wall_s"]] + [t["end_ts"] - origin for t in kpi["tasks"]])
    left, top, right, bottom, height = 60, 44, 20, 36, 26
    width = 1000
    image = Image.new("RGB", (width, top + bottom + height * max(1, len(rows))), "white")
    draw = ImageDraw.Draw(image)
    scale = (width - left - right) / max(span, 1e-9)
    draw.text((left, 8), f"{run['graph']} on {run['executor']} ({run['workers']} workers): {run['wall_s']:.2f} s",
              fill="black")
    x = left
    for i, name in enumerate(names):  # legend, one swatch per stage
        draw.rectangle((x, 26, x + 10, 36), fill=TAB10[i % 10])
        draw.text((x + 14, 25), name, fill="black")
        x += 24 + 7 * len(name)
    for worker, row in rows.items():
        y = top + row * height
        draw.text((8, y + height // 2 - 6), f"w{row}", fill="black")
    for task in kpi["tasks"]:
        colour = TAB10[names.index(task["stage"]) % 10] if task["stage"] in names else (128, 128, 128)
        y = top + rows[task["worker"]] * height
        x0 = left + (task["start_ts"] - origin) * scale
        x1 = max(x0 + 1, x0 + task["duration_s"] * scale)
        draw.rectangle((x0, y + 3, x1, y + height - 3), fill=colour,
                       outline="black" if task["status"] != "ok" else colour)
    axis = top + height * max(1, len(rows)) + 2
    draw.line((left, axis, width - right, axis), fill="black")
    for tick in _ticks(span):
        tx = left + tick * scale
        draw.line((tx, axis, tx, axis + 4), fill="black")
        draw.text((tx - 8, axis + 6), f"{tick:g}", fill="black")
    draw.text((width - right - 170, axis + 20), "seconds since run start", fill="black")
    image.save(path, format="PNG")


def write_chrome_trace(kpi: dict[str, Any], path: str) -> None:
    """Save :func:`chrome_trace` as JSON (open it in chrome://tracing or ui.perfetto.dev)."""
    with open(path, "w") as handle:
        json.dump(chrome_trace(kpi), handle)
