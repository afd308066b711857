"""The storage gateway's HTTP server process (see :mod:`.gateway`): objects served by aligned blocks.

Started by :class:`.gateway._Gateway` with the Lithops config on its first stdin line;
it prints its port, then one report line per request it makes to the store
(``<kind> <token> <bytes>``), and echoes each settle mark read from stdin after
every earlier report.  It stops when its parent goes (stdin closes).
"""
from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import unquote

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


class ObjectHandler(BaseHTTPRequestHandler):
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


def main() -> None:
    """The server process: config on the first stdin line, port on stdout, then reports; stops at stdin's end."""
    report = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever a library prints cannot garble the reports
    sys.stdout = sys.stderr
    objects.configure(json.loads(sys.stdin.readline()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), ObjectHandler)
    server.daemon_threads = True
    ObjectHandler.report = report
    print(server.server_address[1], file=report, flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for line in sys.stdin:  # settle marks, echoed once every earlier report is written; EOF: parent gone
        with ObjectHandler.report_lock:
            print(f"mark {line.strip()}", file=report, flush=True)
    server.shutdown()
