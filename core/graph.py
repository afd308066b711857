"""Stage graphs: named stages that map, shuffle or reduce, declared once for every executor."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

from .partitioners import Partitioner

StageKind = Literal["map", "shuffle", "reduce"]


@dataclass
class Stage:
    """One node of a :class:`Graph`.

    ``over`` is the name of the upstream stage, or (for a source map) the list
    of partition descriptors or the :class:`Partitioner` that yields them.
    """

    name: str
    kind: StageKind
    fn: Callable[..., Any] | None
    over: str | Sequence[Any] | Partitioner
    params: dict[str, Any] = field(default_factory=dict)
    side: dict[str, str] = field(default_factory=dict)
    partitions: int | None = None  # shuffle only: number of key buckets
    memory_mb: int | None = None

    @property
    def upstream(self) -> str | None:
        """Name of the stage this one consumes, or None for a source."""
        return self.over if isinstance(self.over, str) else None


class Graph:
    """A pipeline as a chain of named stages.

    Examples
    --------
    >>> g = Graph("wordcount")
    >>> g.map("count", count_words, over=ByteRangePartitioner(path, 8))
    >>> g.shuffle("by_word", over="count", partitions=4)
    >>> g.map("sum", sum_counts, over="by_word")
    >>> g.reduce("merge", merge_counts, over="sum", params={"out": "counts.tsv"})
    """

    def __init__(self, name: str):
        self.name = name
        self.stages: dict[str, Stage] = {}

    def _add(self, stage: Stage) -> Graph:
        if stage.name in self.stages:
            raise ValueError(f"graph {self.name!r}: stage {stage.name!r} declared twice")
        for dep in [stage.upstream, *stage.side.values()]:
            if dep is not None and dep not in self.stages:
                raise ValueError(f"graph {self.name!r}: stage {stage.name!r} uses unknown stage {dep!r}")
        if stage.upstream is not None:
            up = self.stages[stage.upstream]
            consumers = [s for s in self.stages.values()
                         if s.upstream == up.name or up.name in s.side.values()]
            if consumers and (stage.kind == "shuffle" or self.shuffle_after(up.name)):
                raise ValueError(f"graph {self.name!r}: a shuffled stage ({up.name!r}) has one consumer")
            if stage.kind == "shuffle" and up.kind != "map":
                raise ValueError(f"graph {self.name!r}: shuffle {stage.name!r} must follow a map stage")
        if any(self.shuffle_after(dep) for dep in stage.side.values()):
            raise ValueError(f"graph {self.name!r}: {stage.name!r} cannot take a shuffled stage as side input")
        self.stages[stage.name] = stage
        return self

    def map(self, name: str, fn: Callable[..., Any], *, over: str | Sequence[Any] | Partitioner,
            params: dict[str, Any] | None = None, side: dict[str, str] | None = None,
            memory_mb: int | None = None) -> Graph:
        """Fan out: call ``fn(item, **params, **side)`` once per partition."""
        return self._add(Stage(name, "map", fn, over, dict(params or {}), dict(side or {}), None, memory_mb))

    def shuffle(self, name: str, *, over: str, partitions: int) -> Graph:
        """Group the ``(key, value)`` pairs emitted by map stage ``over`` into key buckets."""
        if partitions < 1:
            raise ValueError(f"shuffle {name!r}: partitions must be >= 1")
        return self._add(Stage(name, "shuffle", None, over, partitions=partitions))

    def reduce(self, name: str, fn: Callable[..., Any], *, over: str,
               params: dict[str, Any] | None = None, side: dict[str, str] | None = None,
               memory_mb: int | None = None) -> Graph:
        """Fan in: call ``fn(items, **params, **side)`` once with every upstream output."""
        return self._add(Stage(name, "reduce", fn, over, dict(params or {}), dict(side or {}), None, memory_mb))

    def shuffle_after(self, name: str) -> Stage | None:
        """The shuffle stage consuming stage ``name``, if any."""
        return next((s for s in self.stages.values() if s.kind == "shuffle" and s.upstream == name), None)

    @property
    def last(self) -> Stage:
        """The final stage, whose output is the run's result."""
        if not self.stages:
            raise ValueError(f"graph {self.name!r} has no stages")
        return list(self.stages.values())[-1]

    def source_items(self, stage: Stage) -> list[Any]:
        """The partition descriptors of a source map stage."""
        over = stage.over
        return list(over.partitions()) if isinstance(over, Partitioner) else list(over)

    def partition_counts(self) -> dict[str, int]:
        """Number of tasks (or buckets, for a shuffle) of every stage, without running anything."""
        counts: dict[str, int] = {}
        for stage in self.stages.values():
            if stage.kind == "reduce":
                counts[stage.name] = 1
            elif stage.kind == "shuffle":
                counts[stage.name] = int(stage.partitions or 1)
            elif stage.upstream is None:
                counts[stage.name] = len(self.source_items(stage))
            else:
                counts[stage.name] = counts[stage.upstream]
        return counts

    def describe(self) -> str:
        """A printable plan: one line per stage with its kind, input and partition count."""
        counts = self.partition_counts()
        lines = [f"graph {self.name}: {len(self.stages)} stages"]
        for i, stage in enumerate(self.stages.values(), 1):
            source = stage.upstream or type(stage.over).__name__
            fn = getattr(stage.fn, "__qualname__", "-") if stage.fn else "group by key"
            side = f"  side: {', '.join(stage.side.values())}" if stage.side else ""
            unit = "buckets" if stage.kind == "shuffle" else "tasks"
            lines.append(f"  {i}. {stage.name:<14} {stage.kind:<8} over {source:<20} "
                         f"{counts[stage.name]:>6} {unit}  ({fn}){side}")
        return "\n".join(lines)
