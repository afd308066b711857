"""The core's demo graph: word count over a generated text file, read by byte ranges.

map (count words in each byte range) -> shuffle (by word) -> map (sum per word)
-> reduce (write the sorted counts atomically).  Used by ``cloudbutton demo``,
the core tests and the executor benchmark.
"""
from __future__ import annotations

import os
from collections import Counter

import numpy as np

from .graph import Graph
from .job import Job
from .partitioners import ByteRange, ByteRangePartitioner, read_records
from .storage import atomic_output

WORDS = [f"{a}{b}{c}" for a in ("kalo", "mino", "peru", "situ", "vaxe") for b in ("", "ra", "tel", "quin")
         for c in ("bo", "do", "mel", "vorn")]


def make_text(path: str, size_mb: float, seed: int = 0) -> str:
    """Write about ``size_mb`` MB of random words (Zipf-like frequencies), ~6 words per line."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, len(WORDS) + 1)
    vocabulary = np.array([w.encode() for w in WORDS], dtype=object)
    mean_word = sum(len(w) * p for w, p in zip(WORDS, weights / weights.sum())) + 1
    n_words = int(size_mb * 1e6 / mean_word)
    words = vocabulary[rng.choice(len(WORDS), n_words, p=weights / weights.sum())]
    ends = np.where(rng.random(n_words) < 1 / 6, b"\n", b" ")
    ends[-1] = b"\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        handle.write(b"".join((words + ends).tolist()))
    return path


def count_words(part: ByteRange) -> list[tuple[str, int]]:
    """Words counted in the lines that start inside ``part``."""
    return sorted((word.decode(), n) for word, n in Counter(read_records(part).split()).items())


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
    return Job(wordcount_graph(text, out, partitions, buckets), out, inputs=[text],
               summary=lambda counts: f"{len(counts)} distinct words, {sum(counts.values())} in all -> {out}")
