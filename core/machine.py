"""Describe the machine a benchmark ran on (for the committed results)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from typing import Mapping, Sequence


def describe(packages: tuple[str, ...] = ("cloudbutton", "lithops", "pyspark", "numpy", "scipy")) -> str:
    """One markdown paragraph: CPU, cores, memory, load, OS, Python and package versions."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Machine: {cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, {platform.system()} "
            f"{platform.release()}; load average at start {load}; Python {sys.version.split()[0]}; "
            f"{', '.join(versions)}.")


def time_command(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[float, float, float]:
    """Run ``cmd`` under GNU ``/usr/bin/time``: (wall s, user + system CPU s, peak RSS MB of the largest process)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", report.name, *cmd], check=True,
                       env=None if env is None else dict(env),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall, user, system, rss_kb = (float(x) for x in report.read().split()[-4:])
    return wall, user + system, rss_kb / 1024
