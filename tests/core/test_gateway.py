"""The storage gateway serves objects to URL readers by ranged GETs, counted to the thread that asked."""
from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
import uuid

import pytest

from cloudbutton.core import storage
from cloudbutton.core.storage import gateway_server


@pytest.fixture
def blob(s3_server, tmp_path):
    """A 3 MiB random object on the S3 server, its bytes, and the storage configured for it."""
    data = os.urandom(3 * 2**20)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    uri = s3_server.upload(path, f"gateway-{uuid.uuid4().hex[:8]}/blob.bin")
    storage.configure(s3_server.lithops_config)
    yield uri, data
    storage.configure(None)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as response:
        return response.status, dict(response.headers), response.read()


def test_ranges_heads_and_whole_reads_return_the_object_bytes(blob):
    uri, data = blob
    url = storage.url_of(uri)
    assert url.startswith("http://127.0.0.1:")
    assert _get(url, {"Range": "bytes=100-199"})[2] == data[100:200]
    status, headers, body = _get(url, {"Range": "bytes=3000000-"})
    assert status == 206 and body == data[3000000:]
    assert headers["Content-Range"] == f"bytes 3000000-{len(data) - 1}/{len(data)}"
    assert _get(url, {"Range": "bytes=-28"})[2] == data[-28:]
    assert _get(url)[2] == data
    head = urllib.request.urlopen(urllib.request.Request(url, method="HEAD"))
    assert int(head.headers["Content-Length"]) == len(data)
    with pytest.raises(urllib.error.HTTPError) as missing:
        _get(storage.url_of(uri + ".absent"))
    assert missing.value.code == 404


def test_a_reader_that_stops_early_leaves_the_rest_unfetched_and_is_billed_for_what_was(blob):
    uri, data = blob
    storage.settle()
    requests0, read0 = storage.requests(), storage.remote_bytes()[0]
    with urllib.request.urlopen(storage.url_of(uri)) as response:  # open-ended, then hang up after 100 KiB
        assert response.read(100 * 1024) == data[: 100 * 1024]
    storage.settle()
    fetched = storage.remote_bytes()[0] - read0
    assert 100 * 1024 <= fetched < len(data) // 2
    assert storage.requests()["get"] - requests0["get"] >= 1
    assert storage.requests()["head"] - requests0["head"] >= 1


def test_traffic_is_counted_to_the_thread_that_asked_for_the_url(blob):
    uri, data = blob
    counted: dict[str, int] = {}

    def task() -> None:
        url = storage.url_of(uri)
        assert _get(url, {"Range": "bytes=0-1023"})[2] == data[:1024]
        storage.settle()
        counted["read"] = storage.remote_bytes()[0]

    storage.settle()
    mine = storage.remote_bytes()[0]
    worker = threading.Thread(target=task)
    worker.start()
    worker.join()
    storage.settle()
    assert counted["read"] >= 1024  # a block (or a cached one's zero) is the task's, not this thread's
    assert storage.remote_bytes()[0] == mine


def test_blocks_are_aligned_and_reused_by_a_second_reader(blob):
    uri, data = blob
    url = storage.url_of(uri)
    storage.settle()
    read0 = storage.remote_bytes()[0]
    first = _get(url, {"Range": f"bytes={5 * gateway_server.BLOCK + 10}-{5 * gateway_server.BLOCK + 99}"})[2]
    storage.settle()
    read1 = storage.remote_bytes()[0]
    again = _get(url, {"Range": f"bytes={5 * gateway_server.BLOCK + 50}-{5 * gateway_server.BLOCK + 60}"})[2]
    storage.settle()
    assert first == data[5 * gateway_server.BLOCK + 10: 5 * gateway_server.BLOCK + 100]
    assert again == data[5 * gateway_server.BLOCK + 50: 5 * gateway_server.BLOCK + 61]
    assert read1 - read0 == gateway_server.BLOCK  # one aligned block fetched...
    assert storage.remote_bytes()[0] == read1  # ...and served again without a fetch
