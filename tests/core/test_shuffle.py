"""The object-storage shuffle: one object per map task, a bucket manifest, ranged reads, requests counted."""
from __future__ import annotations

import pickle
import uuid
from collections import defaultdict

import pytest

from cloudbutton.core import Graph, RunOptions, run, storage
from cloudbutton.core.shuffle import TAIL_BYTES, bucket_of, plan_buckets, read_bucket, write_map_output


def _pairs(task: int, buckets: int) -> list[tuple[int, tuple[int, int]]]:
    """Task ``task`` sends one record to every bucket whose number is divisible by (task % 3) + 1."""
    return [(key, (task, key * task)) for key in range(buckets) if key % (task % 3 + 1) == 0]


def _expected(tasks: int, buckets: int) -> list[dict[int, list[tuple[int, int]]]]:
    grouped: list[dict[int, list]] = [defaultdict(list) for _ in range(buckets)]
    for task in range(tasks):
        for key, value in _pairs(task, buckets):
            grouped[bucket_of(key, buckets)][key].append(value)
    return [dict(sorted(g.items())) for g in grouped]


def _used(before: dict[str, int]) -> dict[str, int]:
    return {kind: n - before[kind] for kind, n in storage.requests().items()}


@pytest.fixture
def s3(s3_server):
    storage.configure(s3_server.lithops_config)
    yield s3_server
    storage.configure(None)


def test_one_object_per_map_task_and_one_range_per_touched_map(s3):
    tasks, buckets = 7, 12
    root = s3.uri(f"shuffle-{uuid.uuid4().hex[:8]}")
    before = storage.requests()
    refs = [write_map_output(_pairs(t, buckets), buckets, f"{root}/map/{t}.pkl") for t in range(tasks)]
    assert _used(before)["put"] == tasks and len(s3.keys(root[len("s3://cloudbutton-test/"):])) == tasks
    before = storage.requests()
    inputs = plan_buckets(refs, buckets, f"{root}/manifest.bin")
    used = _used(before)
    assert (used["get"], used["put"]) == (tasks, 1)  # one index read per map object, one manifest
    for bucket, inp in enumerate(inputs):
        before = storage.requests()
        assert read_bucket(inp) == _expected(tasks, buckets)[bucket]
        touched = sum(1 for t in range(tasks) if bucket % (t % 3 + 1) == 0)
        assert _used(before)["get"] == 1 + touched, bucket
    # bucket payloads stay small whatever the number of maps: a URI template and a row range
    assert len(pickle.dumps(inputs[0])) < 300


def test_empty_buckets_and_silent_maps_cost_nothing(tmp_path):
    buckets = 50
    refs = [write_map_output([(3, "a"), (3, "b")], buckets, str(tmp_path / "0.pkl")),
            write_map_output([], buckets, str(tmp_path / "1.pkl")),
            write_map_output([(3, "c"), (10, "d")], buckets, str(tmp_path / "2.pkl"))]
    assert refs[1] is None and not (tmp_path / "1.pkl").exists()
    inputs = plan_buckets(refs, buckets, str(tmp_path / "manifest.bin"))
    assert [i.bucket for i in inputs if i.stop > i.start] == [3, 10]
    before = storage.requests()
    assert read_bucket(inputs[3]) == {3: ["a", "b", "c"]}  # values in map-task order
    assert read_bucket(inputs[10]) == {10: ["d"]}
    assert all(read_bucket(i) == {} for i in inputs if i.bucket not in (3, 10))
    assert storage.requests() == before  # local files: no object requests at all


def test_map_objects_without_a_common_name_and_a_large_index(tmp_path):
    buckets = 5000  # an index of 100 kB: more than the first tail read
    names = ["alpha.bin", "beta.bin"]
    refs = [write_map_output([(k, (t, k)) for k in range(buckets)], buckets, str(tmp_path / names[t]))
            for t in range(2)]
    assert refs[0].nbytes > TAIL_BYTES
    inputs = plan_buckets(refs, buckets, str(tmp_path / "manifest.bin"))
    assert not isinstance(inputs[0].maps, str)  # a URI table in the manifest
    assert read_bucket(inputs[4321]) == {4321: [(0, 4321), (1, 4321)]}


def _emit(task: int, *, buckets: int) -> list[tuple[int, tuple[int, int]]]:
    return _pairs(task, buckets)


def _collect(group: dict[int, list[tuple[int, int]]]) -> list[tuple[int, list[tuple[int, int]]]]:
    return list(group.items())


@pytest.mark.parametrize("executor", ["threads", "processes", "lithops"])
def test_a_graph_shuffle_gives_the_same_groups_on_every_executor(executor):
    tasks, buckets = 12, 40
    graph = Graph("all-to-all")
    graph.map("emit", _emit, over=list(range(tasks)), params={"buckets": buckets})
    graph.shuffle("by_key", over="emit", partitions=buckets)
    graph.map("collect", _collect, over="by_key")
    result = run(graph, RunOptions(executor=executor, workers=2, quiet=True))
    assert [dict(part) for part in result.value] == _expected(tasks, buckets)
