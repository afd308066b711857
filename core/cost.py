"""The cost model: what a serverless run would be billed, from what the run measured.

Per task attempt, the billed duration is the longer of the task's own time and
the function time Lithops measured (its handler around the task), plus on a
cold start the INIT phase (the worker's start-up before its first task, at most
AWS's 10 s INIT limit), rounded up to the billing step.  Object storage
requests are priced per 1,000 by class: writes (PUT, COPY, POST, LIST) and
reads (GET, HEAD, everything else); DELETE is free.

Default prices (us-east-1, as published by AWS on its Lambda and S3 pricing
pages; recorded 2026-11-30, see ../shared/research/core.md section 4):

* AWS Lambda x86: $0.20 per million requests, $0.0000166667 per GB-second, 1 ms steps.
* Amazon S3 Standard: $0.005 per 1,000 PUT/COPY/POST/LIST, $0.0004 per 1,000 GET and other requests.

Google Cloud Storage's class A/B operations cost the same per 1,000 (Standard
storage); any other provider is a :class:`PriceModel` with its own figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

#: Request kinds billed as writes ("class A") and as reads ("class B"); DELETE is free.
WRITE_REQUESTS = ("put", "copy", "list")
READ_REQUESTS = ("get", "head")


@dataclass(frozen=True)
class PriceModel:
    """Serverless and object-storage prices; the defaults are AWS us-east-1 (Lambda x86, S3 Standard).

    Parameters
    ----------
    usd_per_request, usd_per_gb_s, billing_ms
        Function invocation price, GB-second price and billing step.
    usd_per_1k_writes, usd_per_1k_reads
        Storage request prices per 1,000 (PUT/COPY/LIST, GET/HEAD).
    init_limit_s
        Longest INIT phase billed on a cold start (AWS stops INIT at 10 s).
    as_of
        When these prices were taken.
    """

    name: str = "aws-lambda-x86+s3"
    usd_per_request: float = 2e-7
    usd_per_gb_s: float = 0.0000166667
    billing_ms: int = 1
    usd_per_1k_writes: float = 0.005
    usd_per_1k_reads: float = 0.0004
    init_limit_s: float = 10.0
    as_of: str = "2026-11-30"

    def billed_seconds(self, duration_s: float) -> float:
        """Duration rounded up to the billing granularity."""
        step = self.billing_ms / 1000
        return math.ceil(round(duration_s / step, 9)) * step

    def attempt_seconds(self, attempt: dict[str, Any]) -> float:
        """Billed seconds of one attempt: max(task, Lithops function) time + INIT on a cold start."""
        run = max(attempt["duration_s"], attempt.get("function_s", 0.0))
        init = min(attempt.get("init_s", 0.0), self.init_limit_s) if attempt.get("cold_start") else 0.0
        return self.billed_seconds(run + init)

    def request_cost(self, requests: dict[str, int]) -> float:
        """Dollars of a count of storage requests by kind."""
        writes = sum(requests.get(kind, 0) for kind in WRITE_REQUESTS)
        reads = sum(requests.get(kind, 0) for kind in READ_REQUESTS)
        return writes / 1000 * self.usd_per_1k_writes + reads / 1000 * self.usd_per_1k_reads

    def cost(self, attempts: list[dict[str, Any]], driver_requests: dict[str, int] | None = None
             ) -> dict[str, float]:
        """GB-seconds and dollars (compute, requests, total) of task attempts plus the driver's requests."""
        gb_s = sum(a["memory_mb"] / 1024 * self.attempt_seconds(a) for a in attempts)
        compute = len(attempts) * self.usd_per_request + gb_s * self.usd_per_gb_s
        requests = add_requests([a.get("requests", {}) for a in attempts] + [driver_requests or {}])
        storage = self.request_cost(requests)
        return {"gb_s": gb_s, "compute_usd": compute, "requests_usd": storage, "cost_usd": compute + storage}


def add_requests(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Sum of request counts by kind."""
    total: dict[str, int] = {}
    for count in counts:
        for kind, n in count.items():
            total[kind] = total.get(kind, 0) + n
    return total

