"""``report.html``: one self-contained page per run (and ``bench.html`` per benchmark).

The page holds the run (graph, executor, workers, wall, cost, efficiency,
retries, failures), a per-stage table, the task timeline as inline SVG (one
row per worker, coloured by stage, hovering a task shows it) and the
pipeline's own results.  Those come from the command's ``report`` hook
(:class:`~cloudbutton.core.cli.Command`), found through the run's graph name
``<pipeline>.<command>``; it reads the files the pipeline wrote.  Everything
is inline (CSS, SVG, base64 PNG): the page opens from disk and fetches nothing.

Pipelines build their sections with the helpers here (:func:`facts`,
:func:`table`, :func:`bars`, :func:`histogram`, :func:`image`,
:func:`gallery`), so every report looks alike.
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from . import storage
from .errors import InputError
from .kpi import _bytes
from .timeline import TAB10, _ticks, worker_rows

log = logging.getLogger(__name__)

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;background:#f4f6f8}
header{background:#22313f;color:#fff;padding:14px 28px}header h1{margin:0;font-size:21px}
header p{margin:4px 0 0;color:#c9d3dc}main{padding:4px 28px 28px;max-width:1180px}
section{background:#fff;border:1px solid #dde3e8;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:17px;margin:2px 0 10px}h3{font-size:14px;margin:12px 0 6px}
.badge{display:inline-block;padding:1px 9px;border-radius:9px;font-size:12px;font-weight:600;margin-left:8px}
.ok{background:#2ca02c;color:#fff}.failed{background:#d62728;color:#fff}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px;margin:0}
.facts div{background:#f4f6f8;border-radius:4px;padding:6px 10px}.facts dt{font-size:12px;color:#5a6772}
.facts dd{margin:0;font-size:16px;font-weight:600;overflow-wrap:anywhere}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 9px;border-bottom:1px solid #e6eaee}
th{background:#f4f6f8;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:6px 12px 6px 0;display:inline-block;vertical-align:top}
figcaption{font-size:12px;color:#3c4750;max-width:420px}
.gallery figure{width:150px}.gallery img{width:150px;image-rendering:pixelated;background:#eee}
.error{white-space:pre-wrap;background:#fdecea;border:1px solid #f5c2c0;padding:8px;border-radius:4px}
svg text{font:11px system-ui,sans-serif;fill:#1d232a}.note{color:#5a6772;font-size:12px}
"""


@dataclass(frozen=True)
class Section:
    """One titled part of a report page; ``html`` is a fragment built with this module's helpers."""

    title: str
    html: str


def escape(value: Any) -> str:
    """Text made safe for HTML."""
    return html.escape(str(value))


def facts(pairs: Iterable[tuple[str, Any]]) -> str:
    """Key figures as a grid of labelled values."""
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in pairs)
    return f'<dl class="facts">{cells}</dl>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table; numbers are right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{escape(c)}</td>' if isinstance(c, (int, float)) or _numeric(c) else f"<td>{escape(c)}</td>"
        for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _numeric(text: Any) -> bool:
    try:
        float(str(text).rstrip("%$sxB ").replace(",", "").lstrip("$"))
        return True
    except ValueError:
        return False


def png_uri(data: bytes) -> str:
    """A ``data:`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def image(data: bytes, caption: str = "") -> str:
    """An inline PNG figure with an optional caption."""
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{png_uri(data)}" alt="{escape(caption)}">{cap}</figure>'


def gallery(items: Iterable[tuple[bytes, Sequence[str]]]) -> str:
    """Small images side by side, each with caption lines (e.g. formula, adduct, scores)."""
    figures = "".join(
        f'<figure><img src="{png_uri(data)}" alt="{escape(lines[0] if lines else "")}">'
        f'<figcaption>{"<br>".join(escape(line) for line in lines)}</figcaption></figure>'
        for data, lines in items)
    return f'<div class="gallery">{figures}</div>'


def bars(labels: Sequence[str], values: Sequence[float], ylabel: str, width: int = 420, height: int = 200,
         colour: str = "#1f77b4") -> str:
    """A bar chart as inline SVG; hovering a bar shows its label and value."""
    left, bottom, top = 46, 34, 10
    n = max(1, len(values))
    peak = max([*values, 1e-12])
    step = (width - left - 8) / n
    parts = [f'<svg width="{width}" height="{height}" role="img" class="chart"><title>{escape(ylabel)}</title>']
    plot_h = height - bottom - top
    for tick in _ticks(peak, 4):
        y = top + plot_h * (1 - tick / peak)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#e6eaee"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for i, (label, value) in enumerate(zip(labels, values)):
        h = plot_h * value / peak
        x = left + i * step + step * 0.1
        parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{escape(label)}: {value:g}</title></rect>')
        if n <= 16:
            parts.append(f'<text x="{x + step * 0.4:.1f}" y="{height - bottom + 14}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.0f}" transform="rotate(-90 12 {top + plot_h / 2:.0f})" '
                 f'text-anchor="middle">{escape(ylabel)}</text></svg>')
    return "".join(parts)


def histogram(values: Sequence[float], bins: int, xlabel: str, caption: str = "", width: int = 420,
              height: int = 200, colour: str = "#1f77b4") -> str:
    """A histogram of ``values`` as an inline SVG figure (bars titled with their range and count)."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if not data.size:
        return f'<p class="note">{escape(xlabel)}: no values</p>'
    counts, edges = np.histogram(data, bins=bins)
    labels = [f"{edges[i]:.4g}–{edges[i + 1]:.4g}" for i in range(len(counts))]
    chart = bars(labels, counts.tolist(), "count", width, height, colour)
    axis = (f'<div class="note" style="width:{width}px;display:flex;justify-content:space-between">'
            f"<span>{edges[0]:.4g}</span><span>{escape(xlabel)}</span><span>{edges[-1]:.4g}</span></div>")
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{chart}{axis}{cap}</figure>"


# ---------------------------------------------------------------- the run


def _colour(index: int) -> str:
    return "#%02x%02x%02x" % TAB10[index % len(TAB10)]


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_section(kpi: dict[str, Any]) -> Section:
    """The run's totals, and for a failed run what failed."""
    run = kpi["run"]
    failed_attempts = [t for t in kpi["tasks"] if t.get("status", "ok") != "ok"]
    options = run.get("options", {})
    pairs = [("graph", run["graph"]), ("executor", run["executor"]), ("workers", run["workers"]),
             ("wall", f"{run['wall_s']:.2f} s"), ("executor start", f"{run.get('start_cost_s', 0):.2f} s"),
             ("tasks", run["tasks"]), ("attempts", run["attempts"]), ("retries", run["retries"]),
             ("failed attempts", len(failed_attempts)),
             *([("reused tasks (resume)", run["reused_tasks"])] if run.get("reused_tasks") else []),
             ("parallel efficiency", f"{run['parallel_efficiency']:.0%}"),
             ("CPU", f"{run['cpu_s']:.2f} s"), ("peak RSS / task", _bytes(run["peak_rss_bytes"])),
             ("read", _bytes(run["bytes_read"])), ("written", _bytes(run["bytes_written"])),
             ("GB-s", f"{run['gb_s']:.3f}"), ("cost", f"${run['cost_usd']:.6f}"),
             ("memory / task", f"{options.get('memory_mb', '-')} MB"), ("started", _when(run.get("started")))]
    body = facts(pairs)
    body += f'<p class="note">Cost model: {escape(kpi["price_model"]["name"])} ' \
            f'(${kpi["price_model"]["usd_per_gb_s"]:g} per GB-s, ${kpi["price_model"]["usd_per_request"]:g} ' \
            f"per request); output: {escape(options.get('output') or '-')}</p>"
    if not run.get("ok", True):
        error = run.get("error")
        text = error if isinstance(error, str) else json.dumps(error, indent=1) if error else "the run failed"
        body += f'<h3>Failure</h3><div class="error">{escape(text)}</div>'
    if failed_attempts:
        body += "<h3>Failed attempts</h3>" + table(
            ("stage", "partition", "attempt", "worker", "duration s", "error"),
            [(t["stage"], t["partition"], t["attempt"], t["worker"], f"{t['duration_s']:.2f}", t.get("error") or "")
             for t in failed_attempts[:50]])
    return Section("Run", body)


def graph_svg(kpi: dict[str, Any]) -> str:
    """The stages as a chain of boxes (name, kind, tasks), coloured as in the timeline."""
    stages = kpi["stages"]
    box_w, gap, h = 130, 26, 54
    width = max(1, len(stages)) * (box_w + gap)
    parts = [f'<svg width="{width}" height="{h + 8}" role="img"><title>stage graph</title>']
    for i, s in enumerate(stages):
        x = i * (box_w + gap) + 2
        parts.append(f'<rect x="{x}" y="4" width="{box_w}" height="{h}" rx="6" fill="{_colour(i)}" '
                     f'fill-opacity="0.18" stroke="{_colour(i)}"><title>{escape(s["name"])}: {escape(s["kind"])}, '
                     f'{s["tasks"]} tasks, {s["wall_s"]:.2f} s</title></rect>'
                     f'<text x="{x + box_w / 2}" y="24" text-anchor="middle" font-weight="600">{escape(s["name"])}</text>'
                     f'<text x="{x + box_w / 2}" y="42" text-anchor="middle">{escape(s["kind"])} · '
                     f'{s["tasks"]} task{"s" if s["tasks"] != 1 else ""}</text>')
        if i:
            parts.append(f'<path d="M{x - gap + 2} {4 + h / 2} h{gap - 8}" stroke="#5a6772" stroke-width="1.5"/>'
                         f'<path d="M{x - 6} {h / 2} l6 4 l-6 4z" fill="#5a6772"/>')
    parts.append("</svg>")
    return "".join(parts)


def stages_section(kpi: dict[str, Any]) -> Section:
    """The stage graph and one table row per stage."""
    rows = []
    for s in kpi["stages"]:
        t = s["task_time_s"]
        rows.append((s["name"], s["kind"], s["tasks"], f"{s['wall_s']:.2f}", f"{t['median']:.3f}", f"{t['max']:.3f}",
                     f"{s['cpu_s']:.2f}", _bytes(s["peak_rss_bytes"]), _bytes(s["bytes_read"]),
                     _bytes(s["bytes_written"]), s["retries"], f"{s['parallel_efficiency']:.0%}", f"{s['gb_s']:.3f}",
                     f"{s['cost_usd']:.6f}"))
    head = ("stage", "kind", "tasks", "wall s", "median task s", "max task s", "CPU s", "peak RSS", "read",
            "written", "retries", "efficiency", "GB-s", "$")
    return Section("Stages", graph_svg(kpi) + table(head, rows))


def timeline_svg(kpi: dict[str, Any], width: int = 1100) -> str:
    """The task timeline: one row per worker, one bar per attempt coloured by stage, a title on each."""
    tasks, run = kpi["tasks"], kpi["run"]
    rows = worker_rows(tasks)
    names = [s["name"] for s in kpi["stages"]]
    origin = run["started"]
    span = max([run["wall_s"]] + [t["start_ts"] + t["duration_s"] - origin for t in tasks])
    left, right, top, row_h = 64, 12, 26, 22
    height = top + row_h * max(1, len(rows)) + 34
    scale = (width - left - right) / max(span, 1e-9)
    parts = [f'<svg width="{width}" height="{height}" role="img" class="timeline"><title>task timeline</title>']
    x = left
    for i, name in enumerate(names):  # legend
        parts.append(f'<rect x="{x}" y="6" width="11" height="11" fill="{_colour(i)}"/>'
                     f'<text x="{x + 15}" y="16">{escape(name)}</text>')
        x += 30 + 7 * len(name)
    for worker, row in rows.items():
        y = top + row * row_h
        parts.append(f'<text x="6" y="{y + 15}"><title>{escape(worker)}</title>w{row}</text>')
    for t in tasks:
        colour = _colour(names.index(t["stage"])) if t["stage"] in names else "#888888"
        y = top + rows[t["worker"]] * row_h
        x0 = left + (t["start_ts"] - origin) * scale
        ok = t.get("status", "ok") == "ok"
        outline = "" if ok else ' stroke="#000" stroke-width="1.5" stroke-dasharray="3 2"'
        label = (f"{t['stage']}[{t['partition']}] attempt {t['attempt']} {t.get('status', 'ok')}: "
                 f"{t['duration_s']:.3f} s from {t['start_ts'] - origin:.3f} s, CPU {t['cpu_s']:.3f} s, "
                 f"RSS {_bytes(t['peak_rss_bytes'])}, read {_bytes(t['bytes_read'])}, "
                 f"written {_bytes(t['bytes_written'])}, worker {t['worker']}")
        parts.append(f'<rect class="task" x="{x0:.1f}" y="{y + 3}" width="{max(1.0, t["duration_s"] * scale):.1f}" '
                     f'height="{row_h - 6}" fill="{colour}"{outline}><title>{escape(label)}</title></rect>')
    axis = top + row_h * max(1, len(rows)) + 4
    parts.append(f'<line x1="{left}" y1="{axis}" x2="{width - right}" y2="{axis}" stroke="#000"/>')
    for tick in _ticks(span):
        tx = left + tick * scale
        parts.append(f'<line x1="{tx:.1f}" y1="{axis}" x2="{tx:.1f}" y2="{axis + 4}" stroke="#000"/>'
                     f'<text x="{tx:.1f}" y="{axis + 16}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{width - right}" y="{axis + 30}" text-anchor="end">seconds since run start</text></svg>')
    return "".join(parts)


def timeline_section(kpi: dict[str, Any]) -> Section:
    """The task timeline (hover a bar for the task)."""
    note = '<p class="note">One row per worker; hover a bar to see the task. Dashed outline: a failed attempt.</p>'
    return Section("Task timeline", note + timeline_svg(kpi))


def page(title: str, subtitle: str, sections: Sequence[Section], badge: str = "") -> str:
    """A complete HTML document: inline style, no script, no external resource."""
    body = "".join(f'<section id="{escape(_anchor(s.title))}"><h2>{escape(s.title)}</h2>{s.html}</section>'
                   for s in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{escape(title)}{badge}</h1><p>{escape(subtitle)}</p></header>"
            f"<main>{body}</main></body></html>\n")


def _anchor(title: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in title.lower())


def pipeline_sections(kpi: dict[str, Any]) -> list[Section]:
    """The sections of the command that ran (found by the graph name ``<pipeline>.<command>``).

    Nothing when no pipeline claims the graph or the run left no output; a hook
    that fails becomes a section saying why, so the rest of the report stands.
    """
    from .cli import discover_pipelines

    name, _, command = kpi["run"]["graph"].partition(".")
    output = kpi["run"].get("options", {}).get("output")
    if not output or not kpi["run"].get("ok", True) or not _registered(name):
        return []
    pipeline = discover_pipelines(only=name).get(name)
    hook = getattr(pipeline.commands.get(command), "report", None) if pipeline else None
    if hook is None or not storage.exists(output):
        return []
    try:
        return list(hook(output))
    except Exception as exc:  # noqa: BLE001 - the run's own report must still be written
        log.warning("%s: results section not built: %s", output, exc)
        return [Section("Results", f'<div class="error">results not shown: {escape(type(exc).__name__)}: '
                                   f"{escape(exc)}</div>")]


def _registered(name: str) -> bool:
    from importlib import metadata

    from .cli import ENTRY_POINT_GROUP

    return any(entry.name == name for entry in metadata.entry_points(group=ENTRY_POINT_GROUP))


def render(kpi: dict[str, Any]) -> str:
    """The report page of one run's kpi.json document."""
    run = kpi["run"]
    ok = run.get("ok", True)
    badge = f'<span class="badge {"ok" if ok else "failed"}">{"ok" if ok else "failed"}</span>'
    subtitle = (f"{run['executor']} executor, {run['workers']} workers · wall {run['wall_s']:.2f} s · "
                f"${run['cost_usd']:.6f} · {_when(run.get('started'))}")
    sections = [run_section(kpi), *pipeline_sections(kpi), stages_section(kpi), timeline_section(kpi)]
    return page(f"{run['graph']} on {run['executor']}", subtitle, sections, badge)


def report_path(kpi_path: str) -> str:
    """Where a kpi.json's report goes: ``report.html`` beside ``kpi.json``, else ``<stem>.report.html``."""
    folder, name = os.path.split(kpi_path)
    if name == "kpi.json":
        return os.path.join(folder, "report.html")
    return (kpi_path[:-5] if kpi_path.endswith(".json") else kpi_path) + ".report.html"


def write_report(kpi_path: str, out: str | None = None) -> str:
    """Render the kpi.json at ``kpi_path`` into ``out`` (default :func:`report_path`); return ``out``."""
    try:
        kpi = json.loads(storage.read_range(kpi_path))
    except (OSError, ValueError) as exc:
        raise InputError(kpi_path, f"not a readable kpi.json ({exc})") from None
    if not isinstance(kpi, dict) or not str(kpi.get("schema", "")).startswith("cloudbutton.kpi/"):
        raise InputError(kpi_path, "not a cloudbutton kpi.json (no 'schema': 'cloudbutton.kpi/...')")
    out = out or report_path(kpi_path)
    with storage.atomic_output(out) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(render(kpi))
    return out


def write_run_report(kpi_path: str, since: float) -> str | None:
    """Write the report of the run whose kpi.json is at ``kpi_path``, if that run started after ``since``.

    Used after a failed run: the runner writes kpi.json for failed runs too, but
    a run stopped before it started leaves an older kpi.json (or none), which
    must not be reported as this run.  Never raises: the run's own error is
    what the caller re-raises.
    """
    try:
        if storage.exists(kpi_path) and json.loads(storage.read_range(kpi_path))["run"]["started"] >= since:
            return write_report(kpi_path)
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: no report written: %s", kpi_path, exc)
    return None


# ---------------------------------------------------------------- cloudbutton bench


def bench_page(report: dict[str, Any], folder: str) -> str:
    """The page of a ``cloudbutton bench`` report: executors side by side, their timelines, the projection.

    ``report`` is bench.json's content; bench.png and projection.png in ``folder`` are embedded.
    """
    import statistics

    table_ = report["table"]
    summary = facts([("pipeline", f"{report['pipeline']} {report['command']}"), ("workers", report["workers"]),
                     ("runs per executor", report["repeat"]),
                     ("outputs identical", f"{report['identical']} ({len(report['runs'])} runs)"),
                     ("fingerprint", report["fingerprint"][:16])])
    rows = [(name, f"{r['wall_s']['median']:.2f}", f"{r['wall_s']['min']:.2f}", f"{r['wall_s']['max']:.2f}",
             f"{r['first_start_s']:.2f}", f"{r['task_time_s']:.2f}", f"{r['parallel_efficiency']:.0%}",
             _bytes(r["peak_rss_bytes"]), f"{r['gb_s']:.3f}", f"{r['cost_usd']:.6f}",
             f"{r['speedup_vs_spark']:.2f}x" if r.get("speedup_vs_spark") else "-") for name, r in table_.items()]
    executors = table(("executor", "wall median s", "min", "max", "first start s", "task time s", "efficiency",
                       "peak RSS/task", "GB-s", "$", "vs Spark"), rows)
    walls: dict[str, dict[str, list[float]]] = {}
    for run in report["runs"]:
        for stage in run["kpi"]["stages"]:
            walls.setdefault(stage["name"], {}).setdefault(run["executor"], []).append(stage["wall_s"])
    stages = table(("stage", *table_), [(name, *(f"{statistics.median(by[e]):.2f}" if e in by else "-"
                                                 for e in table_)) for name, by in walls.items()])
    firsts: dict[str, dict[str, Any]] = {}
    for run in report["runs"]:
        firsts.setdefault(run["executor"], run["kpi"])
    timelines = "".join(f"<h3>{escape(name)}</h3>{timeline_svg(kpi, width=1080)}" for name, kpi in firsts.items())
    proj = table(("functions / executors", "serverless wall s", "serverless $", "Spark wall s"),
                 [(r["n"], f"{r['serverless_wall_s']:.2f}", f"{r['serverless_cost_usd']:.6f}",
                   f"{r['spark_wall_s']:.2f}") for r in report["projection"]])
    check = table(("workers", "predicted s", "measured s", "error"),
                  [(r["workers"], f"{r['predicted_s']:.2f}", f"{r['measured_s']:.2f}", f"{r['error']:+.1%}")
                   for r in report["validation"]["rows"]])
    pictures = {name: os.path.join(folder, f"{name}.png") for name in ("bench", "projection")}
    embedded = {name: image(storage.read_range(path)) if storage.exists(path) else "" for name, path in pictures.items()}
    sections = [
        Section("Executors side by side", summary + executors + embedded["bench"]),
        Section("Where the time goes (median stage wall, s)", stages),
        Section("Task timelines (first run of each executor)", timelines),
        Section("Scale projection (a model, not a measurement)",
                f'<p class="note">From the task durations, bytes and memory of the '
                f"{escape(report['projection_source'])} run.</p>" + proj + embedded["projection"]),
        Section("Model check against measured local runs", check),
    ]
    return page(f"Benchmark: {report['pipeline']} {report['command']}", report["machine"], sections)


def write_bench_page(report: dict[str, Any], folder: str) -> str:
    """Write :func:`bench_page` as ``folder/bench.html``; return its path."""
    out = os.path.join(folder, "bench.html")
    with storage.atomic_output(out) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(bench_page(report, folder))
    return out
