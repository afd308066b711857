"""The core's demo graph: word count over a generated text file, read by byte ranges.

map (count words in each byte range) -> shuffle (by word) -> map (sum per word)
-> reduce (write the sorted counts atomically).  Used by ``cloudbutton demo``,
the core tests and the executor benchmark.
"""
from __future__ import annotations

import os
import random
from collections import Counter

from .graph import Graph
from .job import Job
from .partitioners import ByteRange, ByteRangePartitioner, read_records
from .storage import atomic_output

WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "si", "tu") for b in
         ("", "n", "ra", "tel", "bo", "quin", "x", "do", "mel", "vor")]


def make_text(path: str, size_mb: float, seed: int = 0) -> str:
    """Write ``size_mb`` MB of random words (Zipf-like frequencies), 1-12 words per line."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    target = int(size_mb * 1e6)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "w") as handle:
        written = 0
        while written < target:
            line = " ".join(rng.choices(WORDS, weights, k=rng.randint(1, 12))) + "\n"
            handle.write(line)
            written += len(line)
    return path


def count_words(part: ByteRange) -> list[tuple[str, int]]:
    """Words counted in the lines that start inside ``part``."""
    return sorted(Counter(read_records(part).decode().split()).items())


def sum_counts(group: dict[str, list[int]]) -> list[tuple[str, int]]:
    """Total per word of one shuffle bucket."""
    return [(word, sum(counts)) for word, counts in group.items()]


def write_counts(parts: list[list[tuple[str, int]]], out: str) -> dict[str, int]:
    """Merge the buckets, write ``word<TAB>count`` sorted by word, return the counts."""
    counts = dict(sorted(pair for part in parts for pair in part))
    with atomic_output(out) as tmp, open(tmp, "w") as handle:
        handle.writelines(f"{word}\t{n}\n" for word, n in counts.items())
    return counts


def wordcount_graph(text: str, out: str, partitions: int = 8, buckets: int = 4) -> Graph:
    """The demo graph over ``text`` with ``partitions`` byte ranges and ``buckets`` shuffle buckets."""
    graph = Graph("demo.wordcount")
    graph.map("count", count_words, over=ByteRangePartitioner(text, partitions))
    graph.shuffle("by_word", over="count", partitions=buckets)
    graph.map("sum", sum_counts, over="by_word")
    graph.reduce("write", write_counts, over="sum", params={"out": out})
    return graph


def wordcount_job(text: str, out: str, partitions: int = 8, buckets: int = 4) -> Job:
    """:func:`wordcount_graph` as a Job whose KPIs go beside ``out``."""
    return Job(wordcount_graph(text, out, partitions, buckets), out,
               summary=lambda counts: f"{len(counts)} distinct words, {sum(counts.values())} in all -> {out}")
