"""Where remote workers can write: local paths are refused up front when workers run elsewhere.

With Spark on a cluster master or Lithops on a cloud backend, tasks run on other
machines: a driver-local output or scratch path would be written into a worker's
own disk (or fail there), so it is refused before any work starts.  Object URIs
(``s3://...``) are reachable from everywhere; ``file:///path`` states that the
folder is mounted at the same path on every node.
"""
from __future__ import annotations

from typing import Any, Sequence

from . import storage
from .errors import InputError


def remote_workers(executor: str, spark_master: str | None, lithops_config: dict[str, Any] | None) -> str | None:
    """A description of where workers run when that is not this machine, else None."""
    if executor == "spark" and spark_master and not spark_master.startswith("local"):
        return f"Spark master {spark_master}"
    backend = ((lithops_config or {}).get("lithops") or {}).get("backend", "localhost")
    if executor == "lithops" and backend != "localhost":
        return f"Lithops backend {backend}"
    return None


def _shared(uri: str) -> bool:
    return storage.is_object_uri(uri) or str(uri).startswith("file://")


def check_reachable(executor: str, *, spark_master: str | None, lithops_config: dict[str, Any] | None,
                    scratch: str | None, outputs: Sequence[str]) -> None:
    """Refuse, in one line naming the option to set, local paths that remote workers cannot share.

    Raises
    ------
    InputError
        An output or ``--scratch`` that is a local path, or a Spark cluster without ``--scratch``.
    """
    where = remote_workers(executor, spark_master, lithops_config)
    if where is None:
        return
    hint = "give an object URI (s3://bucket/...) or file:///path for a folder every node mounts"
    for output in outputs:
        if not _shared(output):
            raise InputError("--out", f"{output} is a local path that the workers of {where} cannot write: {hint}")
    if scratch is not None and not _shared(scratch):
        raise InputError("--scratch", f"{scratch} is a local path that the workers of {where} cannot share: {hint}")
    if scratch is None and executor == "spark":
        raise InputError("--scratch", f"intermediates of {where} cannot live in the driver's temporary folder: "
                         f"set --scratch ({hint})")
