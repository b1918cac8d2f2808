"""Run a module of this project in a child Python process with memory and time limits.

For work on hostile input whose cost cannot be bounded beforehand (a library's regular expressions,
an XML tree built from a small compressed file): the child sets its own address-space and CPU limits
before importing anything, so a runaway allocation fails there, and the parent kills it after a wall
clock timeout. The server process only ever sees the child's answer on stdout, or ``LimitExceeded``.

No ``preexec_fn`` (unsafe in the threaded server): the limits are set by a short bootstrap run with
``python -c``, which then runs the module as ``__main__``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The child's exit status after a MemoryError (caught in the bootstrap, before any output is trusted).
MEMORY_EXIT = 86

_BOOT = f"""
import os, resource, runpy, sys
memory, cpu, module = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
sys.argv = [module]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except MemoryError:
    os._exit({MEMORY_EXIT})
"""


@dataclass(frozen=True)
class Limits:
    """Wall-clock seconds (CPU seconds are capped the same) and bytes of address space."""

    seconds: float
    memory_bytes: int


class LimitExceeded(RuntimeError):
    """The child ran out of time or memory, or died; ``kind`` is "time", "memory" or "crash"."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def run_module(module: str, payload: bytes, limits: Limits) -> bytes:
    """``python -m module`` with ``payload`` on stdin, under ``limits``; its stdout when it exits 0."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cpu = max(1, int(limits.seconds + 0.999))
    command = [sys.executable, "-P", "-c", _BOOT, str(limits.memory_bytes), str(cpu), module]
    try:
        result = subprocess.run(command, input=payload, capture_output=True, timeout=limits.seconds,
                                cwd=ROOT, env=env, check=False)
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child
        raise LimitExceeded("time", f"over {limits.seconds:g} s") from None
    code = result.returncode
    if code == 0:
        return result.stdout
    tail = result.stderr.decode("utf-8", "replace").strip()[-500:]
    if code == MEMORY_EXIT or "MemoryError" in tail:
        raise LimitExceeded("memory", f"over {limits.memory_bytes} bytes")
    if code in (-signal.SIGXCPU, -signal.SIGKILL):  # the CPU limit's soft then hard signal
        raise LimitExceeded("time", f"over {cpu} CPU s")
    raise LimitExceeded("crash", f"exit {code}: {tail}")
