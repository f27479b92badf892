"""Run a child process and measure it: wall time, CPU (user + system, from wait4's
rusage, so only that child and what it waited for), peak RSS."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measured:
    cmd: list[str]
    rc: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    stdout: str
    stderr: str


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
                 stderr_to_terminal: bool = False, timeout_s: float | None = None) -> Measured:
    """Run ``cmd``; ``env`` is the child's whole environment (default: this process's)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=dict(os.environ) if env is None else env, stdout=subprocess.PIPE,
        stderr=None if stderr_to_terminal else subprocess.PIPE, text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    # communicate() already reaped the child: read its rusage from the children total.
    wall = time.perf_counter() - started
    return Measured(cmd, proc.returncode, wall, 0.0, 0.0, out or "", err or "")


class ChildUsage:
    """CPU and peak RSS of the children reaped between ``start()`` and ``stop()``."""

    def __enter__(self) -> "ChildUsage":
        import resource

        self._r = resource
        self._u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc: object) -> None:
        u1 = self._r.getrusage(self._r.RUSAGE_CHILDREN)
        self.cpu_s = (u1.ru_utime - self._u0.ru_utime) + (u1.ru_stime - self._u0.ru_stime)
        self.max_rss_mb = u1.ru_maxrss / 1024  # the largest child so far (a high-water mark)


def measured(cmd: list[str], **kwargs: object) -> Measured:
    """:func:`run_measured` plus CPU from RUSAGE_CHILDREN around it."""
    with ChildUsage() as usage:
        m = run_measured(cmd, **kwargs)  # type: ignore[arg-type]
    m.cpu_s = usage.cpu_s
    m.max_rss_mb = usage.max_rss_mb
    return m
