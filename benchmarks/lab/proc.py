"""A benchmark's child process, with every process it starts: a peer such as GaMMA runs
a worker pool, and ``subprocess.run(timeout=)`` kills only the child, leaving the pool
running on the shared cores after a timeout."""

from __future__ import annotations

import os
import signal
import subprocess


def run_group(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``cmd`` in a session of its own, output captured; on timeout the whole process
    group is killed and ``subprocess.TimeoutExpired`` raised, as ``subprocess.run``."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
