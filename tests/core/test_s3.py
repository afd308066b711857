"""Object storage against a real S3 server (moto on loopback) reached through Lithops's minio backend."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cloudbutton.core import PriceModel, RunOptions, storage
from cloudbutton.core.demo import make_text, wordcount_job
from cloudbutton.core.errors import InputError
from cloudbutton.core.executors.base import ExecutorSettings
from cloudbutton.core.executors.lithops_backend import LithopsExecutor
from cloudbutton.core.job import run_job
from cloudbutton.core.partitioners import ByteRangePartitioner, read_records


@pytest.fixture
def s3(s3_server):
    """The session's S3 server, configured for this process, with a fresh key prefix per test."""
    storage.configure(s3_server.lithops_config)
    s3_server.prefix = f"t-{uuid.uuid4().hex[:8]}/"
    yield s3_server
    storage.configure(None)


@pytest.fixture(scope="module")
def small_text(tmp_path_factory) -> Path:
    return Path(make_text(str(tmp_path_factory.mktemp("s3text") / "words.txt"), 1.5))


def _delta(before: dict[str, int]) -> dict[str, int]:
    return {kind: n - before[kind] for kind, n in storage.requests().items()}


def test_a_byte_range_task_fetches_its_share_of_the_object(s3, small_text):
    uri = s3.upload(small_text, s3.prefix + "words.txt")
    total = small_text.stat().st_size
    parts = ByteRangePartitioner(uri, 8).partitions()
    before, read0 = storage.requests(), storage.remote_bytes()[0]
    records = read_records(parts[3])
    fetched = storage.remote_bytes()[0] - read0
    assert records == read_records(ByteRangePartitioner(str(small_text), 8).partitions()[3])
    assert total / 8 <= fetched < total / 8 + 70_000  # its eighth plus the lookahead for the last line
    assert _delta(before)["get"] <= 3


def test_a_ranged_file_reads_blocks_not_the_object(s3, small_text):
    uri = s3.upload(small_text, s3.prefix + "words.txt")
    read0 = storage.remote_bytes()[0]
    with storage.open_ranged(uri, buffer_size=64 * 1024) as handle:
        handle.seek(700_000)
        head = handle.read(100)
    assert head == small_text.read_bytes()[700_000:700_100]
    assert storage.remote_bytes()[0] - read0 == 64 * 1024


def test_prefixes_and_globs_list_objects(s3, tmp_path):
    for name in ("a.laz", "b.LAS", "notes.txt", "sub/c.laz"):
        storage.write_bytes(s3.uri(s3.prefix + "tiles/" + name), name.encode())
    root = s3.uri(s3.prefix + "tiles/")
    assert storage.expand(root) == [root + n for n in ("a.laz", "b.LAS", "notes.txt")]
    assert storage.expand(root.rstrip("/")) == storage.expand(root)
    assert storage.expand(root + "*.laz") == [root + "a.laz"]
    assert storage.expand(root + "*/*.laz") == [root + "sub/c.laz"]
    assert storage.expand(s3.uri(s3.prefix + "t*s/?.laz")) == [root + "a.laz"]
    assert storage.expand(root + "a.laz") == [root + "a.laz"]
    assert storage.expand(s3.uri(s3.prefix + "nothing/")) == []
    assert storage.list_prefix(root) == [root + n for n in ("a.laz", "b.LAS", "notes.txt", "sub/c.laz")]
    # local folders and globs give the same answers
    for name in ("a.laz", "b.LAS", "notes.txt", "sub/c.laz"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [Path(p).name for p in storage.expand(str(tmp_path))] == ["a.laz", "b.LAS", "notes.txt"]
    assert [Path(p).name for p in storage.expand(str(tmp_path / "*" / "*.laz"))] == ["c.laz"]


def test_object_outputs_appear_whole_or_not_at_all(s3):
    final = s3.prefix + "out/result.txt"
    with storage.atomic_output(s3.uri(final)) as tmp:
        Path(tmp).write_text("first")
    with pytest.raises(KeyError):
        with storage.atomic_output(s3.uri(final)) as tmp:
            Path(tmp).write_text("second, half written")
            raise KeyError("crash")
    assert storage.read_range(s3.uri(final)) == b"first"
    storage.write_bytes(s3.uri(s3.prefix + "out/folder/keep.txt"), b"not ours")
    before = storage.requests()
    with storage.atomic_output(s3.uri(s3.prefix + "out/folder"), directory=True) as tmp:
        (Path(tmp) / "a.csv").write_text("a")
        (Path(tmp) / "deep").mkdir()
        (Path(tmp) / "deep" / "b.csv").write_text("b")
    used = _delta(before)
    assert s3.keys(s3.prefix) == [s3.prefix + k for k in
                                  ("out/folder/a.csv", "out/folder/deep/b.csv", "out/folder/keep.txt", "out/result.txt")]
    assert (used["put"], used["copy"]) == (2, 2)  # uploaded to a temporary key, copied into place


def test_s3_uris_use_a_minio_section_when_the_default_storage_is_localhost(s3):
    config = {**s3.lithops_config, "lithops": {"backend": "localhost", "storage": "localhost"}}
    storage.configure(config)
    uri = s3.uri(s3.prefix + "x.bin")
    storage.write_bytes(uri, b"abc")
    assert s3.keys(s3.prefix) == [s3.prefix + "x.bin"] and storage.read_range(uri, 1) == b"bc"


def test_aws_s3_with_an_endpoint_key_is_refused_in_one_line(s3):
    storage.configure({"lithops": {"storage": "aws_s3"},
                       "aws_s3": {"region": "us-east-1", "endpoint": s3.endpoint}})
    with pytest.raises(InputError, match="aws_s3 storage has no endpoint key.*storage: minio"):
        storage.size(s3.uri("anything"))


def test_lithops_scratch_of_minio_storage_is_an_s3_uri(s3):
    executor = LithopsExecutor(ExecutorSettings(2, lithops_config=s3.lithops_config))
    assert executor.scratch_uri("run1") == s3.uri("cloudbutton-scratch/run1")


@pytest.mark.parametrize("executor", ["threads", "lithops"])
def test_word_count_with_s3_input_scratch_and_output_matches_local(s3, small_text, tmp_path, executor):
    local = tmp_path / "local.tsv"
    run_job(wordcount_job(str(small_text), str(local)), RunOptions(quiet=True, workers=2))
    source = s3.upload(small_text, s3.prefix + "in/words.txt")
    out = s3.uri(s3.prefix + "out/counts.tsv")
    result = run_job(wordcount_job(source, out), RunOptions(
        executor=executor, workers=2, quiet=True, lithops_config=s3.config_file,
        scratch=s3.uri(s3.prefix + "scratch")))
    assert s3.download(s3.prefix + "out/counts.tsv", tmp_path / "s3.tsv").read_bytes() == local.read_bytes()
    assert result.kpi_path == s3.uri(s3.prefix + "out/kpi.json")
    assert s3.prefix + "out/kpi.json" in s3.keys(s3.prefix)
    assert not s3.keys(s3.prefix + "scratch")  # the run's intermediates are gone
    run_ = result.kpi["run"]
    counts = [t for t in result.kpi["tasks"] if t["stage"] == "count"]
    assert all(1 <= t["requests"]["get"] <= 3 for t in counts)  # its byte range (+ the last line's tail)
    assert sum(t["bytes_read"] for t in counts) < small_text.stat().st_size + 8 * 70_000  # data (+ lookahead), no imports
    assert run_["requests"]["put"] >= 1 and run_["driver_requests"]["head"] >= 1  # the plan sized the input
    assert run_["requests_usd"] == pytest.approx(PriceModel().request_cost(run_["requests"])) and run_["requests_usd"] > 0
