"""Object URIs as loopback HTTP URLs, for native readers that open URLs but not Python files.

htslib (pysam) reads BAM/CRAM/FASTA by ranged HTTP requests but cannot take a
Python file object.  :func:`url_of` gives it ``http://127.0.0.1:<port>/<token>/<uri>``,
served by a small HTTP server that answers ``HEAD`` and ``GET`` (with or without
``Range``) by ranged reads through the configured Lithops storage.  So any backend
Lithops knows works and credentials never appear in a URL.

The server runs in its own process (one per process that needs it, started on first
use, loopback only, gone when its parent goes): pysam holds the GIL while it opens a
file, so a server thread in the same interpreter could not answer it.  The server
reports every request and byte back, and they are counted to the thread that asked
for the URL (``<token>``), as that thread's own storage calls are; :func:`settle`
waits until every report so far is counted.  Objects are fetched in aligned blocks
kept per process (a reopened file's header is not fetched again), an open-ended
range in runs that grow by one block per GET: a reader that seeks away after a
few records closes the connection and leaves the rest unread.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from typing import IO, Any
from urllib.parse import quote

from . import objects


class _Gateway:
    """The parent's handle on its server process: port, token owners, the thread reading its reports."""

    def __init__(self) -> None:
        self.owners: dict[str, dict[str, Any]] = {}
        self.settled = threading.Condition()
        self.marks_sent = self.marks_seen = 0
        self.process = subprocess.Popen([sys.executable, "-c", f"from {__package__}.gateway_server import main; main()"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(objects.configured()) + "\n")
        self.process.stdin.flush()
        self.port = int(self.process.stdout.readline())
        threading.Thread(target=self._read_reports, args=(self.process.stdout,), name="cloudbutton-gateway",
                         daemon=True).start()

    def _read_reports(self, stream: IO[str]) -> None:
        for line in stream:
            kind, token, *rest = line.split() + ["", ""]
            if kind == "mark" and token.isdigit():
                with self.settled:
                    self.marks_seen = int(token)
                    self.settled.notify_all()
            elif token in self.owners and rest[0].isdigit():  # "<kind> <token> <bytes>": one request of kind
                with objects.counting_into(self.owners[token]):
                    objects.count(kind, read=int(rest[0]))

    def settle(self) -> None:
        """Return once every report the server sent before this call is counted."""
        assert self.process.stdin
        with self.settled:
            self.marks_sent += 1
            mark = self.marks_sent
            self.process.stdin.write(f"{mark}\n")
            self.process.stdin.flush()
            self.settled.wait_for(lambda: self.marks_seen >= mark or self.process.poll() is not None, timeout=10)


_gateway: _Gateway | None = None
_lock = threading.Lock()


def url_of(uri: str) -> str:
    """An ``http://127.0.0.1`` URL serving object ``uri`` whose traffic is counted to the calling thread.

    Appending a suffix to the URL (htslib looks for ``<url>.fai``) names the object
    ``uri`` + suffix, as it would for a path.
    """
    global _gateway
    state = objects.counters()
    with _lock:
        if _gateway is None or _gateway.process.poll() is not None:
            _gateway = _Gateway()
        token = next((t for t, s in _gateway.owners.items() if s is state), None)
        if token is None:
            token = secrets.token_hex(16)
            _gateway.owners[token] = state
        port = _gateway.port
    return f"http://127.0.0.1:{port}/{token}/{quote(uri, safe='/:')}"


def settle() -> None:
    """Count every request the server has reported so far (a no-op when no server runs here)."""
    if _gateway is not None and _gateway.process.poll() is None:
        _gateway.settle()


def _after_fork() -> None:
    """A forked child reads nothing from its parent's server: it starts its own on first use."""
    global _gateway, _lock
    _gateway, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork)
