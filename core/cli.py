"""The ``cloudbutton`` command: pipelines found through entry points, shared options, KPI tools.

A pipeline package exposes a :class:`Pipeline` object in the
``cloudbutton.pipelines`` entry-point group; the core never imports a pipeline
by name, so a third party adds one by declaring that entry point.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Sequence

from .errors import CloudbuttonError, TaskFailed
from .executors import executor_names
from .job import Job, run_job, use_storage_of
from .kpi import compare, summary
from .report import Section, report_path, write_report
from .runner import RunOptions

ENTRY_POINT_GROUP = "cloudbutton.pipelines"


@dataclass(frozen=True)
class Command:
    """One pipeline command: its own arguments and how to build its Job from them.

    ``fingerprint(output)`` digests an output's scientific content (not its
    timestamps or command line) so that ``cloudbutton bench`` can check that
    every executor produced the same result; ``output_name`` is the name bench
    gives the ``--out`` of each run.  ``report(output)`` returns the sections of
    the run's report.html that show the output's results, read from the files
    the run wrote (see :mod:`~cloudbutton.core.report`); the report finds it by
    the run's graph name, ``<pipeline>.<command>``.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    build: Callable[[argparse.Namespace], Job]
    fingerprint: Callable[[str], str] | None = None
    output_name: str = "output"
    report: Callable[[str], list[Section]] | None = None


@dataclass(frozen=True)
class Pipeline:
    """What a pipeline registers under the ``cloudbutton.pipelines`` entry-point group.

    ``sample(folder)`` prepares the pipeline's sample data in ``folder`` and
    returns the arguments (command name first, no ``--out``) that
    ``cloudbutton bench PIPELINE`` runs when given none.
    """

    name: str
    help: str
    commands: dict[str, Command] = field(default_factory=dict)
    sample: Callable[[str], list[str]] | None = None


def discover_pipelines(only: str | None = None) -> dict[str, Pipeline]:
    """Load the registered pipelines (just ``only`` when it names one, so a run imports one plugin);
    one that fails to import is reported and skipped."""
    entries = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    if any(entry.name == only for entry in entries):
        entries = [entry for entry in entries if entry.name == only]
    found: dict[str, Pipeline] = {}
    for entry in entries:
        try:
            found[entry.name] = entry.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
            logging.getLogger("cloudbutton").warning("pipeline %r not loaded: %s", entry.name, exc)
    return found


def common_options() -> argparse.ArgumentParser:
    """Options shared by every pipeline command (a parent parser)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("execution")
    group.add_argument("--executor", default="threads", choices=executor_names(),
                       help="where tasks run (default: threads)")
    group.add_argument("--workers", type=int, default=None, help="parallel tasks (default: CPU count)")
    group.add_argument("--memory", type=int, default=1024, metavar="MB",
                       help="memory per task: Lithops function size, cost model, and the limit of a task's "
                            "private memory on processes (default: 1024)")
    group.add_argument("--lithops-config", metavar="PATH", help="Lithops config file (default: localhost)")
    group.add_argument("--spark-master", metavar="URL", help="Spark master (default: local[WORKERS])")
    group.add_argument("--scratch", metavar="URI",
                       help="where run folders (intermediates, journal) go (default: $CLOUDBUTTON_CACHE/runs, "
                            "~/.cache/cloudbutton/runs; the Lithops storage bucket for lithops)")
    group.add_argument("--resume", action="store_true",
                       help="reuse the tasks an earlier run of the same command finished; run only the rest")
    group.add_argument("--keep-scratch", action="store_true",
                       help="keep the run folder after a successful run (a failed run always keeps it)")
    group.add_argument("--overwrite", action="store_true",
                       help="write into an output folder holding other files (only same-named files are replaced)")
    group.add_argument("--retries", type=int, default=2, help="extra attempts per failing task (default: 2)")
    group.add_argument("--timeout", type=float, default=None, metavar="S", help="time limit per task attempt")
    group.add_argument("--kpi", metavar="PATH", help="kpi.json path (default: beside the output)")
    group.add_argument("--plan", action="store_true", help="print the stages and partitions, run nothing")
    group.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    group.add_argument("-v", "--verbose", action="store_true", help="full tracebacks and debug logs")
    return parser


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The RunOptions the common options ask for."""
    if args.workers is not None and args.workers < 1:
        raise CloudbuttonError(f"--workers must be at least 1, not {args.workers}")
    return RunOptions(executor=args.executor, workers=args.workers, memory_mb=args.memory,
                      retries=args.retries, task_timeout_s=args.timeout, lithops_config=args.lithops_config,
                      spark_master=args.spark_master, scratch=args.scratch, kpi_path=args.kpi,
                      quiet=args.quiet, resume=args.resume, keep_scratch=args.keep_scratch,
                      overwrite=args.overwrite)


def _run_command(command: Command, args: argparse.Namespace) -> int:
    use_storage_of(args.lithops_config)
    job = command.build(args)
    if args.plan:
        print(job.graph.describe())
        return 0
    result = run_job(job, options_from_args(args))
    if not args.quiet:
        if job.summary is not None:
            print(job.summary(result.value))
        print(summary(result.kpi))
        print(f"KPIs: {result.kpi_path}")
    return 0


def _kpi_command(args: argparse.Namespace) -> int:
    def load(path: str) -> dict[str, Any]:
        try:
            with open(path) as handle:
                return json.load(handle)
        except (OSError, ValueError) as exc:
            raise CloudbuttonError(f"{path}: not a readable kpi.json ({exc})") from None

    if args.kpi_cmd == "show":
        print(summary(load(args.kpi_file)))
    else:
        print(compare(load(args.a), load(args.b)))
    return 0


def _clean_command(args: argparse.Namespace) -> int:
    from .clean import clean, parse_age

    use_storage_of(args.lithops_config)  # object-storage scratch of lithops runs
    removed = clean(parse_age(args.older_than), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for run in removed:
        print(f"{verb} {run.marker} ({run.status}, {run.nbytes / 1e6:.1f} MB"
              f"{', scratch ' + run.scratch if run.scratch != run.marker else ''})")
    print(f"{verb} {len(removed)} run folder(s)")
    return 0


def _report_command(args: argparse.Namespace) -> int:
    out = write_report(args.kpi_file, args.output or report_path(args.kpi_file))
    print(f"report: {out}")
    return 0


def _demo_command(args: argparse.Namespace) -> int:
    from .demo import make_text, wordcount_job

    text = os.path.join(args.out, "words.txt")
    if not os.path.exists(text):
        make_text(text, args.size_mb)
    job = wordcount_job(text, os.path.join(args.out, "counts.tsv"), args.partitions)
    return _run_command(Command("", lambda p: None, lambda a: job), args)


def _bench_command(args: argparse.Namespace, pipelines: dict[str, Pipeline]) -> int:
    from .bench import bench_options, run_bench

    options, argv = bench_options().parse_known_args(args.rest, namespace=args)
    report = run_bench(pipelines[args.pipeline], argv, options, common_options())
    print(f"{report['pipeline']} {report['command']}: outputs identical on "
          f"{', '.join(report['table'])}; report in {os.path.join(options.out, 'bench.md')}")
    return 0


def build_parser(pipelines: dict[str, Pipeline]) -> argparse.ArgumentParser:
    """The full argument parser: one sub-command per pipeline, plus ``kpi``, ``report``, ``clean``,
    ``bench`` and ``demo``."""
    from .bench import bench_options

    common = common_options()
    parser = argparse.ArgumentParser(
        prog="cloudbutton",
        description="Run domain-science pipelines as stage graphs on threads, processes, Lithops or Spark, "
                    "with measured KPIs (wall time, CPU, memory, bytes, GB-seconds, cost).")
    sub = parser.add_subparsers(dest="group",
                                metavar="{" + ",".join([*pipelines, "kpi", "report", "clean", "bench", "demo"]) + "}")
    sub.required = True
    for name, pipeline in pipelines.items():
        p_parser = sub.add_parser(name, help=pipeline.help, description=pipeline.help)
        p_sub = p_parser.add_subparsers(dest="command", metavar="{" + ",".join(pipeline.commands) + "}")
        p_sub.required = True
        for cmd_name, command in pipeline.commands.items():
            c_parser = p_sub.add_parser(cmd_name, help=command.help, description=command.help, parents=[common])
            command.add_arguments(c_parser)
            c_parser.set_defaults(handler=lambda a, c=command: _run_command(c, a))
    kpi = sub.add_parser("kpi", help="read kpi.json files")
    kpi_sub = kpi.add_subparsers(dest="kpi_cmd", required=True)
    show = kpi_sub.add_parser("show", help="print a readable summary of one run")
    show.add_argument("kpi_file")
    cmp_ = kpi_sub.add_parser("compare", help="print two runs side by side with B/A ratios")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    kpi.set_defaults(handler=_kpi_command, verbose=False)
    report = sub.add_parser("report", help="(re)build the HTML report of a run from its kpi.json",
                            description="Write one self-contained HTML page (no network access needed) with the "
                                        "run, its stages, the task timeline and the pipeline's results.")
    report.add_argument("kpi_file", metavar="KPI.json")
    report.add_argument("-o", "--output", metavar="report.html",
                        help="where to write it (default: report.html beside kpi.json)")
    report.set_defaults(handler=_report_command, verbose=False)
    clean = sub.add_parser("clean", help="remove run folders (scratch) that failed or kept runs left behind",
                           description="Remove run folders under $CLOUDBUTTON_CACHE/runs (and the scratch they "
                                       "name) last used longer ago than --older-than; runs in progress are kept.")
    clean.add_argument("--older-than", default="0s", metavar="AGE", help="e.g. 7d, 12h, 30m (default: all)")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    clean.add_argument("--lithops-config", metavar="PATH",
                       help="the Lithops config of runs whose scratch is in object storage (default: localhost)")
    clean.set_defaults(handler=_clean_command, verbose=False)
    bench = sub.add_parser(
        "bench", parents=[bench_options()],
        help="run a pipeline on several executors, check the outputs agree, compare KPIs against Spark",
        description="cloudbutton bench PIPELINE [COMMAND ARGS...] [--executors ...] [--repeat N] [--out DIR]: "
                    "without command arguments it runs the pipeline's sample data.")
    bench.add_argument("pipeline", choices=list(pipelines))
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="the pipeline command and its arguments")
    bench.set_defaults(handler=lambda a: _bench_command(a, pipelines), verbose=False)
    demo = sub.add_parser("demo", help="word count over a generated text file (the core's demo graph)",
                          parents=[common])
    demo.add_argument("--out", default="out/demo", help="folder for the input, counts and KPIs")
    demo.add_argument("--size-mb", type=float, default=50, help="size of the generated text (default 50)")
    demo.add_argument("--partitions", type=int, default=8, help="byte ranges to split it into")
    demo.set_defaults(handler=_demo_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cloudbutton`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    wanted = argv[1] if argv[:1] == ["bench"] and len(argv) > 1 else (argv[0] if argv else None)
    parser = build_parser(discover_pipelines(only=wanted))
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except CloudbuttonError as exc:
        if verbose:
            traceback.print_exc()
            if isinstance(exc, TaskFailed) and exc.traceback:
                print(exc.traceback, file=sys.stderr)
        print(f"cloudbutton: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cloudbutton: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line unless -v
        if verbose:
            traceback.print_exc()
        print(f"cloudbutton: error: {type(exc).__name__}: {exc} (run with -v for the traceback)", file=sys.stderr)
        return 1


def console() -> None:
    """The console script: ``main()``, then exit without the interpreter's teardown.

    Finalising numpy, scipy, GDAL and friends takes ~0.2 s after the work is
    done; every output is closed and renamed by then and the executors have
    shut down, so only the standard streams need flushing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
