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
import socket
import subprocess
import sys
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import quote, unquote

from . import objects
from .io import head, read_range

#: Objects are fetched in aligned blocks of this many bytes, kept for every reader of the process.
BLOCK = 1 << 16
#: Most blocks one GET fetches while a response streams on (the run grows by one block per GET:
#: what is fetched beyond what the reader takes stays near the square root of what it takes).
LONGEST_RUN = 64
#: Blocks kept (least recently used dropped first): 64 MiB.
KEPT_BLOCKS = 1024
#: The server's socket send buffer (bytes): how far it may run ahead of a paused reader.
SEND_BUFFER = 1 << 16


class _Gateway:
    """The parent's handle on its server process: port, token owners, the thread reading its reports."""

    def __init__(self) -> None:
        self.owners: dict[str, dict[str, Any]] = {}
        self.settled = threading.Condition()
        self.marks_seen = 0
        self.process = subprocess.Popen([sys.executable, "-c", f"from {__name__} import _main; _main()"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(objects.configured()) + "\n")
        self.process.stdin.flush()
        self.port = int(self.process.stdout.readline())
        threading.Thread(target=self._read_reports, args=(self.process.stdout,), name="cloudbutton-gateway",
                         daemon=True).start()

    def _read_reports(self, stream: IO[str]) -> None:
        for line in stream:
            kind, token, *rest = line.split()
            if kind == "mark":
                with self.settled:
                    self.marks_seen = int(token)
                    self.settled.notify_all()
            elif token in self.owners:  # "<kind> <token> <bytes>": one request of kind
                with objects.counting_into(self.owners[token]):
                    objects.count(kind, read=int(rest[0]))

    def settle(self) -> None:
        """Return once every report the server sent before this call is counted."""
        assert self.process.stdin
        with self.settled:
            mark = self.marks_seen + 1
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


class _ObjectHandler(BaseHTTPRequestHandler):
    """``HEAD`` and ``GET`` (optionally one ``Range: bytes=a-b`` / ``a-`` / ``-n``) of the object in the path."""

    report: IO[str]
    report_lock = threading.Lock()

    def setup(self) -> None:
        super().setup()  # a small send buffer: a paused reader stops the fetching soon
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(body=True)

    def _tell(self, kind: str, token: str, nbytes: int = 0) -> None:
        with self.report_lock:
            self.report.write(f"{kind} {token} {nbytes}\n")
            self.report.flush()

    def _answer(self, body: bool) -> None:
        token, _, quoted = self.path.lstrip("/").partition("/")
        uri = unquote(quoted)
        if not objects.is_object_uri(uri):
            self.send_error(404)
            return
        self._tell("head", token)
        try:
            meta = head(uri)
            total, version = int(meta["content-length"]), meta.get("etag", meta["content-length"])
        except Exception:  # noqa: BLE001 - absent object (backend-specific error): 404 for the reader
            self.send_error(404)
            return
        ranged = self.headers.get("Range") is not None
        start, last = _range(self.headers.get("Range"), total)
        if start > last:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{total}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if ranged else 200)
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{last}/{total}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - start + 1))
        self.end_headers()
        if body:
            self._stream(token, uri, version, total, start, last + 1)

    def _stream(self, token: str, uri: str, version: str, total: int, start: int, end: int) -> None:
        run = 1
        while start < end:
            first = start // BLOCK
            blocks = _blocks.get(uri, version, first)
            if blocks is None:
                last_block = min((end - 1) // BLOCK, first + run - 1)
                data = read_range(uri, first * BLOCK, min(total, (last_block + 1) * BLOCK))  # whole blocks
                self._tell("get", token, len(data))
                blocks = _blocks.put(uri, version, first, data)
                run = min(LONGEST_RUN, run + 1)
            piece = blocks[start - first * BLOCK: end - first * BLOCK]
            try:
                self.wfile.write(piece)
            except OSError:  # the reader seeked away (connection closed): stop fetching
                return
            start += len(piece)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no access log on stderr
        return


class _BlockCache:
    """Aligned blocks of objects (keyed by URI and version), least recently used dropped first.

    A reader that reopens a file, or seeks back, or a second task on the same worker
    reading the same header, is served what was fetched already.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity, self.blocks, self.lock = capacity, OrderedDict(), threading.Lock()

    def get(self, uri: str, version: str, first: int) -> bytes | None:
        """The bytes from block ``first`` on while blocks are kept consecutively (None: not kept)."""
        parts = []
        with self.lock:
            while (uri, version, first + len(parts)) in self.blocks:
                key = (uri, version, first + len(parts))
                self.blocks.move_to_end(key)
                parts.append(self.blocks[key])
                if len(parts[-1]) < BLOCK:  # the object's last block
                    break
        return b"".join(parts) if parts else None

    def put(self, uri: str, version: str, first: int, data: bytes) -> bytes:
        """Keep ``data`` (starting at block ``first``) as blocks; return it."""
        with self.lock:
            for n, offset in enumerate(range(0, len(data), BLOCK)):
                self.blocks[(uri, version, first + n)] = data[offset:offset + BLOCK]
                self.blocks.move_to_end((uri, version, first + n))
            while len(self.blocks) > self.capacity:
                self.blocks.popitem(last=False)
        return data


_blocks = _BlockCache(KEPT_BLOCKS)


def _range(header: str | None, total: int) -> tuple[int, int]:
    """First and last byte of a ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` header (whole object when absent)."""
    if not header or not header.startswith("bytes="):
        return 0, total - 1
    first, _, last = header[len("bytes="):].split(",")[0].strip().partition("-")
    if not first:  # suffix range: the last n bytes
        return max(0, total - int(last)), total - 1
    return int(first), min(total - 1, int(last)) if last else total - 1


def _main() -> None:
    """The server process: config on the first stdin line, port on stdout, then reports; stops at stdin's end."""
    objects.configure(json.loads(sys.stdin.readline()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ObjectHandler)
    server.daemon_threads = True
    _ObjectHandler.report = sys.stdout
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for line in sys.stdin:  # settle marks, echoed once every earlier report is written; EOF: parent gone
        with _ObjectHandler.report_lock:
            print(f"mark {line.strip()}", flush=True)
    server.shutdown()
