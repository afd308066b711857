"""The demo graph (byte-range map, keyed shuffle, reduce) gives identical results everywhere."""
from __future__ import annotations

from pathlib import Path

import pytest

from cloudbutton.core import RunOptions, run
from cloudbutton.core.demo import wordcount_graph

EXECUTORS = ["threads", "processes", "lithops", "spark"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_wordcount_identical_on_every_executor_and_partition_count(executor, words_file, expected_counts,
                                                                   tmp_path: Path):
    outputs = []
    for partitions in (1, 3, 17):
        out = tmp_path / f"counts-{partitions}.tsv"
        result = run(wordcount_graph(str(words_file), str(out), partitions, buckets=5),
                     RunOptions(executor=executor, workers=2, quiet=True))
        assert result.value == expected_counts
        assert result.kpi["stages"][0]["partitions"] == partitions
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].count(b"\n") == len(expected_counts)


def test_remote_executor_passes_intermediates_by_reference(words_file, expected_counts, tmp_path: Path):
    """With a remote executor, map outputs are written to scratch storage and read back by tasks."""
    result = run(wordcount_graph(str(words_file), str(tmp_path / "c.tsv"), 4, buckets=3),
                 RunOptions(executor="processes", workers=2, quiet=True, scratch=str(tmp_path / "scratch")))
    assert result.value == expected_counts
    count, total, _ = result.kpi["stages"]
    assert count["bytes_written"] > 0 and total["bytes_read"] > 0
    assert not any((tmp_path / "scratch").iterdir()), "scratch is cleaned up after the run"


def test_threads_spill_shuffle_buckets_to_local_files(words_file, expected_counts, tmp_path: Path):
    """The in-memory executor still writes shuffle buckets to files (bounded driver memory), then removes them."""
    spill = tmp_path / "spill"
    result = run(wordcount_graph(str(words_file), str(tmp_path / "c.tsv"), 4, buckets=3),
                 RunOptions(executor="threads", workers=2, quiet=True, scratch=str(spill)))
    assert result.value == expected_counts
    assert spill.is_dir() and not any(spill.iterdir()), "spilled buckets are removed after the run"
    spilled = [t for t in result.kpi["tasks"] if t["stage"] == "count"]
    assert all(t["bytes_written"] > 0 for t in spilled)


def _table_size(item: int, *, table) -> int:
    return int(table.sum()) + item


def test_large_inputs_travel_by_reference_on_lithops():
    """A 8 MB parameter and 2 MB items exceed Lithops' 4 MiB task-data cap unless passed by reference."""
    import numpy as np

    from cloudbutton.core import Graph

    table = np.ones(1_000_000)
    graph = Graph("big").map("use", _table_size, over=[0, 1, 2], params={"table": table})
    result = run(graph, RunOptions(executor="lithops", workers=2, quiet=True))
    assert result.value == [1_000_000, 1_000_001, 1_000_002]
