"""URIs, ranged reads (local and Lithops storage), record-aligned byte ranges, atomic outputs."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cloudbutton.core import storage
from cloudbutton.core.partitioners import ByteRange, ByteRangePartitioner, read_records

LINES = b"".join(b"line %d %s\n" % (i, b"x" * (i % 17)) for i in range(300))


@pytest.fixture
def text(tmp_path: Path) -> Path:
    path = tmp_path / "lines.txt"
    path.write_bytes(LINES)
    return path


def test_every_record_read_once_whatever_the_cut_points(text: Path):
    size = len(LINES)
    for cut in range(0, size, 7):
        first = read_records(ByteRange(str(text), 0, cut))
        second = read_records(ByteRange(str(text), cut, size))
        assert first + second == LINES, cut
    for n in (1, 2, 3, 17, 64):
        parts = ByteRangePartitioner(str(text), n).partitions()
        assert len(parts) == n and parts[-1].end == size
        assert b"".join(read_records(p) for p in parts) == LINES


def test_local_and_lithops_storage_ranged_reads(text: Path):
    assert storage.read_range(str(text), 5, 12) == LINES[5:12]
    assert storage.read_range("file://" + str(text), 10) == LINES[10:]
    storage.configure(None)
    uri = f"localhost://storage/cloudbutton-test/{uuid.uuid4().hex}/lines.txt"
    storage.write_bytes(uri, LINES)
    try:
        assert storage.size(uri) == len(LINES) and storage.exists(uri)
        assert storage.read_range(uri, 100, 150) == LINES[100:150]
        assert storage.read_range(uri, 100) == LINES[100:]
        parts = ByteRangePartitioner(uri, 5).partitions()
        assert b"".join(read_records(p) for p in parts) == LINES
    finally:
        storage.delete_prefix(uri.rsplit("/", 1)[0])
    assert not storage.exists(uri)


def test_refs_round_trip(tmp_path: Path):
    ref = storage.store({"a": [1, 2, 3]}, str(tmp_path / "x" / "ref.pkl"))
    assert ref.nbytes == (tmp_path / "x" / "ref.pkl").stat().st_size
    assert storage.load(ref) == {"a": [1, 2, 3]}


def test_atomic_directory_output_replaces_only_on_success(tmp_path: Path):
    target = tmp_path / "results"
    with storage.atomic_output(str(target), directory=True) as tmp:
        (Path(tmp) / "a.csv").write_text("first")
    with pytest.raises(KeyError):
        with storage.atomic_output(str(target), directory=True) as tmp:
            (Path(tmp) / "a.csv").write_text("second, half written")
            raise KeyError("crash")
    assert (target / "a.csv").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
