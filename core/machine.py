"""Describe the machine a benchmark ran on (for the committed results)."""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata


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
