"""Lithops localhost quirks the executor guards against: a lost job manager, an inherited session."""
from __future__ import annotations

import operator
import subprocess
import sys
import textwrap

from cloudbutton.core.executors.base import ExecutorSettings
from cloudbutton.core.executors.lithops_backend import LithopsExecutor
from cloudbutton.core.tasks import TaskSpec, execute_task


def test_job_queued_while_the_manager_exits_still_runs() -> None:
    """The race: invoke() queues a job while Lithops' manager thread is exiting, so none starts it."""
    executor = LithopsExecutor(ExecutorSettings(2, 256))
    executor.start()
    handler = executor.fexec.compute_handler
    start_manager, lost = handler.start_manager, []

    def lose_first_start() -> None:
        if not lost:
            lost.append(True)  # the job is queued, but invoke() believes a manager will run it
            return
        start_manager()

    handler.start_manager = lose_first_start
    try:
        specs = [TaskSpec("neg", i, operator.neg, i) for i in range(3)]
        results = dict(executor.map(execute_task, specs, memory_mb=256))
    finally:
        executor.shutdown()
    assert lost == [True]
    assert {i: outcome.value for i, outcome in results.items()} == {0: 0, 1: -1, 2: -2}


def test_drivers_started_by_a_lithops_process_get_their_own_executor_ids() -> None:
    """Two drivers spawned by a process that used Lithops inherit its session; they must not share ids."""
    child = textwrap.dedent("""
        from cloudbutton.core.executors.base import ExecutorSettings
        from cloudbutton.core.executors.lithops_backend import LithopsExecutor
        executor = LithopsExecutor(ExecutorSettings(1, 256))
        executor.start()
        print(executor.fexec.executor_id)
        executor.shutdown()
    """)
    executor = LithopsExecutor(ExecutorSettings(1, 256))
    executor.start()  # exports this process's Lithops session to the children below
    own = executor.fexec.executor_id
    executor.shutdown()
    children = [subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
                .stdout.split()[-1] for _ in range(2)]
    assert len({own, *children}) == 3, (own, children)
