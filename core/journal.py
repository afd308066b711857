"""The run journal: which tasks of a run finished, under which key, and where their output is.

Every run has a run folder in scratch storage, named by a stable *run identity*
(:func:`run_identity`: the graph's name and stages plus the job's output paths),
so the same command finds it again.  A task's *key* digests what decides its
output (Nextflow's cache key, with content instead of timestamps):

* the stage (name, kind, the source of its function, closure and defaults),
* its parameters and side inputs (side inputs by the keys of their tasks),
* its input: for a source task the partition descriptor plus the content
  digest of every file named in the descriptor, and of every declared input of
  the job named in the parameters; downstream, the keys of the upstream tasks it
  reads (so a change travels down the chain).

When a task succeeds its worker stores the output (already stored for remote
executors; a pickled copy for the threads executor, which keeps the in-memory
value too) and then writes a small record ``journal/<stage>/<partition>.json``
holding the key and the output's reference.  A record exists only once the
output is complete.  ``resume`` reuses a task whose record's key equals the key
computed now, and runs the others.

What the key does not cover: functions that the stage function calls (edit a
helper, run without ``--resume``) and the environment (library versions).
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import inspect
import json
import marshal
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import storage
from .errors import CloudbuttonError
from .tasks import TaskOutcome, TaskSpec

#: Marker file of a run folder (local): identity, scratch URI, status; what ``cloudbutton clean`` reads.
RUN_FILE = "run.json"
LOCK_FILE = "lock"
TOKEN_FILE = "token"


def cache_dir() -> str:
    """``$CLOUDBUTTON_CACHE`` or ``~/.cache/cloudbutton``."""
    return os.environ.get("CLOUDBUTTON_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "cloudbutton")


def default_runs_dir() -> str:
    """Where local run folders live: ``$CLOUDBUTTON_CACHE/runs`` (default ``~/.cache/cloudbutton/runs``)."""
    return os.path.join(cache_dir(), "runs")


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


def run_identity(graph_name: str, stages: Sequence[tuple[str, str]], outputs: Sequence[str] = ()) -> str:
    """Stable name of a run folder: ``<graph>-<16 hex>`` from the graph's name, its stages' names and
    kinds, and the absolute output paths (not parameters: a changed parameter keeps the folder, and
    the keys decide which tasks re-run)."""
    named = [storage.local_path(o) if storage.is_object_uri(o) else os.path.abspath(storage.local_path(o))
             for o in outputs]
    key = _digest(graph_name, *[f"{n}:{k}" for n, k in stages], *sorted(named))
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', graph_name)}-{key[:16]}"


# --------------------------------------------------------------------------- keys


def function_digest(fn: Callable[..., Any] | None) -> str:
    """Digest of a stage function: module, qualified name, source (bytecode when the source cannot
    be read, e.g. ``python -c``), constant defaults and closure values; partials add their arguments."""
    if fn is None:
        return "none"
    if hasattr(fn, "func") and hasattr(fn, "keywords"):  # functools.partial
        return _digest("partial", function_digest(fn.func), value_digest((fn.args, fn.keywords)))
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object: its class's source and its state
        kind = type(fn)
        try:
            body: Any = inspect.getsource(kind)
        except (OSError, TypeError):
            body = kind.__qualname__
        return _digest(kind.__module__, kind.__qualname__, body, value_digest(getattr(fn, "__dict__", None)))
    try:
        body = inspect.getsource(fn)
    except (OSError, TypeError):
        body = marshal.dumps(code)
    closure = [_constant(cell.cell_contents) for cell in (fn.__closure__ or ()) if _filled(cell)]
    defaults = [_constant(v) for v in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values())]
    return _digest(fn.__module__, fn.__qualname__, body, value_digest((defaults, closure)))


_CONSTANTS = (str, bytes, int, float, complex, bool, type(None))


def _constant(value: Any) -> Any:
    """A captured value as part of a function's digest: constants (numbers, strings, tuples of them)
    by value, anything else (a list the function appends to, an object) by type only."""
    if isinstance(value, _CONSTANTS):
        return value
    if isinstance(value, (tuple, frozenset)) and all(isinstance(v, _CONSTANTS) for v in value):
        return value
    return f"<{type(value).__qualname__}>"


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def value_digest(value: Any) -> str:
    """Digest of a picklable value, independent of dict/set order and of the process (joblib.hash)."""
    import joblib  # driver only: workers never import it

    try:
        return joblib.hash(value, hash_name="sha1")
    except Exception:  # noqa: BLE001 - an unpicklable parameter still gets a (less stable) digest
        return _digest(repr(value))


def _canonical(uri: str) -> str:
    return uri.rstrip("/") if storage.is_object_uri(uri) else os.path.realpath(storage.local_path(uri))


def named_paths(value: Any, depth: int = 4) -> Iterator[str]:
    """Strings inside ``value`` (containers and dataclass fields, ``depth`` levels) that name an
    existing file or object: the files a task reads."""
    if isinstance(value, str):
        if len(value) < 4096 and (storage.is_object_uri(value) or os.path.isfile(storage.local_path(value))):
            yield value
        return
    if depth == 0 or value is None or isinstance(value, (bytes, int, float, bool)):
        return
    if isinstance(value, dict):
        items: Iterable[Any] = list(value.keys()) + list(value.values())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    elif is_dataclass(value) and not isinstance(value, type):
        items = [getattr(value, f.name) for f in fields(value)]
    else:
        return
    for item in items:
        yield from named_paths(item, depth - 1)


class FileDigests:
    """Content digests (SHA-256) of the input files of a run.

    A file is read once per run; its digest is also kept in ``$CLOUDBUTTON_CACHE/digests`` under
    the file's path, device, inode, size and modification and change times, so an unchanged file is
    not read again by later runs.  Any write to a file changes its change time, so a modified file
    is always re-read; a merely touched file is re-read and keeps its digest.  Objects are
    digested by size and ETag when the store gives one, else by content.
    """

    def __init__(self, exclude: Sequence[str] = ()):
        self.memo: dict[str, str] = {}
        self.exclude = [e.rstrip("/") if storage.is_object_uri(e) else os.path.abspath(storage.local_path(e))
                        for e in exclude]

    def excluded(self, uri: str) -> bool:
        """True for a job output or a file inside one (never part of a key)."""
        name = uri.rstrip("/") if storage.is_object_uri(uri) else os.path.abspath(storage.local_path(uri))
        return any(name == e or name.startswith(e.rstrip("/" + os.sep) + ("/" if "://" in e else os.sep))
                   for e in self.exclude)

    def of(self, uri: str) -> str | None:
        """The digest of ``uri``, or None for a job output (never part of a key)."""
        if uri not in self.memo:
            if self.excluded(uri):
                self.memo[uri] = ""
            elif storage.is_object_uri(uri):
                self.memo[uri] = self._object(uri)
            else:
                self.memo[uri] = self._file(storage.local_path(uri))
        return self.memo[uri] or None

    def _object(self, uri: str) -> str:
        try:
            head = storage.head(uri)
        except Exception:  # noqa: BLE001 - not found (backend-specific error): not an input
            return ""
        if head.get("etag"):  # S3 and kin: a digest of the content, computed by the store
            return _digest("object", head.get("content-length"), head["etag"])
        return _digest("object", hashlib.sha256(storage.read_range(uri)).hexdigest())

    def _file(self, path: str) -> str:
        st = os.stat(path)
        stamp = _digest(os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        cached = os.path.join(cache_dir(), "digests", stamp[:2], stamp)
        with contextlib.suppress(OSError):
            with open(cached) as handle:
                return handle.read().strip()
        h = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                h.update(block)
        digest = f"{st.st_size}:{h.hexdigest()}"
        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            tmp = f"{cached}.{uuid.uuid4().hex[:8]}"
            with open(tmp, "w") as handle:
                handle.write(digest)
            os.replace(tmp, cached)
        return digest


class TaskKeys:
    """Computes the keys of a graph's tasks, stage by stage, from the keys upstream.

    Files count by content: every file a source partition's descriptor names, and the declared
    inputs (``inputs``, e.g. a Job's) that a stage's parameters name.  Other files named in
    parameters do not (a log or counter file that the tasks themselves write must not change
    the keys).
    """

    def __init__(self, exclude: Sequence[str] = (), inputs: Sequence[str] = ()):
        self.files = FileDigests(exclude)
        self.inputs = {_canonical(i) for i in inputs}
        self.keys: dict[str, list[str]] = {}  # stage -> key per task (per bucket for a shuffle)

    def _files_in(self, value: Any, declared_only: bool = False) -> list[str]:
        paths = [p for p in named_paths(value) if not declared_only or _canonical(p) in self.inputs]
        return sorted({f"{p}={d}" for p in paths if (d := self.files.of(p))})

    def stage(self, name: str, kind: str, fn: Callable[..., Any] | None, params: Any, side: dict[str, str],
              items: Sequence[Any], upstream: str | None, buckets: int | None) -> list[str]:
        """Keys of stage ``name``'s tasks (``items`` are its inputs; only used for a source stage)."""
        if kind == "shuffle":
            up = self.keys[upstream or ""]
            keys = [_digest("shuffle", name, j, *up) for j in range(len(items))]
        else:
            common = _digest(name, kind, function_digest(fn), value_digest(params),
                             *self._files_in(params, declared_only=True),
                             *[f"{arg}<-{'|'.join(self.keys[dep])}" for arg, dep in sorted(side.items())],
                             buckets)
            if upstream is None:
                keys = [_digest(common, value_digest(item), *self._files_in(item)) for item in items]
            elif kind == "reduce":
                keys = [_digest(common, *self.keys[upstream])]
            else:
                keys = [_digest(common, key) for key in self.keys[upstream]]
        self.keys[name] = keys
        return keys


# --------------------------------------------------------------------------- records


def _encode(output: Any) -> Any:
    if isinstance(output, storage.Ref):
        return {"uri": output.uri, "nbytes": output.nbytes, **({"needs": list(output.needs)} if output.needs else {})}
    if isinstance(output, list):  # a shuffle-feeding task: one Ref (or None) per bucket
        return [_encode(part) for part in output]
    if output is None:
        return None
    raise TypeError(f"cannot journal an output of type {type(output).__name__}")


def _decode(data: Any) -> Any:
    if isinstance(data, dict):
        return storage.Ref(data["uri"], int(data["nbytes"]), tuple(data.get("needs", ())))
    if isinstance(data, list):
        return [_decode(part) for part in data]
    return None


def _refs(output: Any) -> Iterator[storage.Ref]:
    if isinstance(output, storage.Ref):
        yield output
    elif isinstance(output, list):
        for part in output:
            yield from _refs(part)


@dataclass(frozen=True)
class JournaledSpec(TaskSpec):
    """A task spec plus what its worker journals once it succeeds (retries copy it whole).

    ``copy_uri``: where to store a copy of an output the task keeps in memory (threads executor,
    last stage); empty when the task stores its output itself (``output_uri``).
    """

    key: str = ""
    record_uri: str = ""
    copy_uri: str = ""


def journaled(fn: Callable[[TaskSpec], TaskOutcome], spec: TaskSpec) -> TaskOutcome:
    """Worker side: run ``fn(spec)``; on success store an in-memory output and write the record.

    A record that cannot be written (an output that cannot be pickled, storage refusing the
    write) leaves the task without one, so a resume runs it again; its attempt's KPI record
    says why (``journal_error``).
    """
    outcome = fn(spec)
    if outcome.error is not None or not isinstance(spec, JournaledSpec):
        return outcome
    try:
        stored = storage.store(outcome.value, spec.copy_uri) if spec.copy_uri else outcome.value
        record = {"key": spec.key, "stage": spec.stage, "partition": spec.partition,
                  "output": _encode(stored), "written": time.time()}
        storage.write_bytes(spec.record_uri, json.dumps(record).encode())
    except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable in-memory output: the task cannot be resumed
        outcome.attempts[-1]["journal_error"] = f"{type(exc).__name__}: {exc}"
    return outcome


class JournalingExecutor:
    """An executor whose tasks journal themselves: ``map(fn, specs)`` runs ``journaled(fn, spec)``."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.name = inner.name

    def map(self, fn: Callable[[TaskSpec], TaskOutcome], items: Sequence[TaskSpec], *, memory_mb: int
            ) -> Iterator[tuple[int, TaskOutcome]]:
        return self.inner.map(functools.partial(journaled, fn), items, memory_mb=memory_mb)


class Journal:
    """The run folder of one run identity: task outputs, records, lock and ``run.json``.

    Parameters
    ----------
    identity : str
        The run identity (:func:`run_identity`).
    scratch_root : str, optional
        Folder or object prefix for task outputs and records (default: the local runs folder).
    resume : bool
        Reuse the records of an earlier run; otherwise an earlier run's folder is emptied first.
    """

    def __init__(self, identity: str, scratch_root: str | None, resume: bool, exclude: Sequence[str] = (),
                 inputs: Sequence[str] = ()):
        self.resume = resume
        runs = default_runs_dir()
        os.makedirs(runs, exist_ok=True)
        self.identity = identity
        self.marker = os.path.join(runs, identity)
        self.lock_handle = self._lock()
        if self.lock_handle is None:  # another live run of the same command: keep out of its way
            if resume:
                raise CloudbuttonError(f"{self.marker}: another run of this command is using its run folder; "
                                       "wait for it to end before resuming")
            self.identity = f"{identity}-{uuid.uuid4().hex[:8]}"
            self.marker = os.path.join(runs, self.identity)
            self.lock_handle = self._lock()
        # Elsewhere than the marker, the folder's name carries the marker's own token: runs whose markers
        # differ (another $CLOUDBUTTON_CACHE, another machine) never share a scratch prefix.
        self.root = f"{scratch_root.rstrip('/')}/{self.identity}-{self._token()}" if scratch_root else self.marker
        self.keys = TaskKeys(exclude, inputs)
        if not resume:
            self._empty()
        self._write_marker("running")

    def _lock(self) -> Any:
        os.makedirs(self.marker, exist_ok=True)
        handle = open(os.path.join(self.marker, LOCK_FILE), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def _token(self) -> str:
        path = os.path.join(self.marker, TOKEN_FILE)
        with contextlib.suppress(OSError):
            with open(path) as handle:
                return handle.read().strip()
        token = uuid.uuid4().hex[:12]
        with open(path, "w") as handle:
            handle.write(token)
        return token

    def _empty(self) -> None:
        if self.root != self.marker:
            storage.delete_prefix(self.root)
        for name in os.listdir(self.marker):
            if name not in (LOCK_FILE, TOKEN_FILE):
                path = os.path.join(self.marker, name)
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)

    def _write_marker(self, status: str) -> None:
        info = {"identity": self.identity, "scratch": self.root, "status": status, "pid": os.getpid(),
                "updated": time.time()}
        tmp = os.path.join(self.marker, f".{RUN_FILE}.{uuid.uuid4().hex[:8]}")
        with open(tmp, "w") as handle:
            json.dump(info, handle)
        os.replace(tmp, os.path.join(self.marker, RUN_FILE))

    def output_uri(self, stage: str, partition: int) -> str:
        """Where task ``partition`` of ``stage`` stores its output."""
        return f"{self.root}/{stage}/{partition}.pkl"

    def record_uri(self, stage: str, partition: int) -> str:
        return f"{self.root}/journal/{stage}/{partition}.json"

    def finished(self, stage: str, partition: int, key: str) -> tuple[bool, Any]:
        """``(True, output)`` when an earlier run journaled this task under ``key`` and its output is there."""
        if not self.resume:
            return False, None
        uri = self.record_uri(stage, partition)
        try:
            record = json.loads(storage.read_range(uri))
        except Exception:  # noqa: BLE001 - missing, half-written or unreadable: not finished
            return False, None
        if record.get("key") != key:
            return False, None
        output = _decode(record.get("output"))
        needed = [uri for ref in _refs(output) for uri in (ref.uri, *ref.needs)]  # files the output points to
        if any(not storage.is_object_uri(uri) and not os.path.exists(uri) for uri in needed):
            return False, None
        return True, output

    def spec(self, spec: TaskSpec, key: str, copy: bool) -> JournaledSpec:
        """``spec`` with what its worker journals (``copy``: also store the output it keeps in memory)."""
        fields_ = {f.name: getattr(spec, f.name) for f in fields(spec)}
        return JournaledSpec(**fields_, key=key, record_uri=self.record_uri(spec.stage, spec.partition),
                             copy_uri=self.output_uri(spec.stage, spec.partition) if copy else "")

    def close(self, ok: bool, keep: bool) -> None:
        """End of the run: a successful run removes its folder unless ``keep``; a failed one keeps it."""
        if ok and not keep:
            if self.root != self.marker:
                storage.delete_prefix(self.root)
            shutil.rmtree(self.marker, ignore_errors=True)
        else:
            self._write_marker("ok" if ok else "failed")
        if self.lock_handle is not None:
            self.lock_handle.close()
            self.lock_handle = None
