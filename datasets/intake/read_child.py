"""Reading an uploaded or imported file in a child process, under memory and time limits (issue 23).

Whatever a file makes the reader do (the .xlsx size check is a first line, not the only one: an .xls or
.xlsb is not measured at all, and calamine aborts the whole process when an allocation fails), it
happens in a child: an address-space limit (RLIMIT_AS) and a wall-clock limit bound it, and when the
child dies or runs over, the parent raises ``ReadError`` (rule ``read_limit``, "文件无法读取：超出大小/
时间限制") and carries on. Nothing is written to the store before the read has returned.

- ``read_isolated`` (the parent) checks the size and loads the bytes (``readers.load_bytes``), sends
  them to a child, and gets back the pickled ``ParsedFile`` or ``ReadError``.
- ``python -P datasets/intake/read_child.py MEMORY_MB CPU_SECONDS`` (the child, run by ``read_isolated`` only):
  sets its limits, imports the reader, then reads one pickled request from stdin and writes the
  pickled outcome to stdout.

Starting Python and importing Polars takes 0.3–1 s, so one child is started ahead of time and waits,
limits set and modules imported, for the next file (``_Spare``); each child reads exactly one file.
A fork server would start faster but would fork a process in which Polars has already started threads.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).resolve()
LIMIT_MESSAGE = "文件无法读取：超出大小/时间限制"
LIMIT_RULE = "read_limit"
DEFAULT_MEMORY_MB = 3072
DEFAULT_SECONDS = 120

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadLimits:
    """The child's address-space limit (MiB; virtual memory, which Polars reserves generously) and
    wall-clock limit (seconds) for reading one file."""

    memory_mb: int = DEFAULT_MEMORY_MB
    seconds: float = DEFAULT_SECONDS

    @classmethod
    def from_settings(cls, settings: Any) -> ReadLimits:
        return cls(settings.read_memory_mb, settings.read_timeout_s)


def _limit_error(detail: str) -> Any:
    from datasets.intake.parsed import ReadError

    return ReadError(
        f"{LIMIT_MESSAGE}（{detail}）。请确认文件是系统导出的明细表；数据确实很多时，请按月份或区县拆分后分别上传。",
        LIMIT_RULE,
    )


class _Spare:
    """One child started ahead of time for the given limits (a lock: pages check files from threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._key: ReadLimits | None = None

    def _start(self, limits: ReadLimits) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        # glibc keeps up to 8 malloc arenas per core, each reserving 64 MB of address space: with many
        # cores that alone would exceed RLIMIT_AS. Polars' own threads use jemalloc.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        cpu = int(limits.seconds * max(os.cpu_count() or 1, 1)) + 10  # a backstop if the parent dies
        return subprocess.Popen(
            [sys.executable, "-P", str(CHILD), str(limits.memory_mb), str(cpu)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
        )

    def take(self, limits: ReadLimits) -> subprocess.Popen[bytes]:
        """A child waiting for a request: the spare when it fits, else a new one."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None and (self._key != limits or proc.poll() is not None):
                _discard(proc)
                proc = None
            return proc if proc is not None else self._start(limits)

    def refill(self, limits: ReadLimits) -> None:
        """Start the spare for the next file, once this one has been read: started alongside the read,
        its imports would compete with it for the CPU."""
        with self._lock:
            if self._proc is None:
                self._proc, self._key = self._start(limits), limits

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                _discard(self._proc)
                self._proc = None


def _discard(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


_spare = _Spare()
atexit.register(_spare.close)


def read_isolated(
    source: Any, file_name: str, kind: str | None = None, max_bytes: int | None = None,
    limits: ReadLimits | None = None,
) -> Any:
    """``readers.read_file`` in a child process under ``limits``; returns its ParsedFile.

    Raises ReadError: the reader's own, or rule ``read_limit`` when the child ran out of memory or
    time or died (the message says which). A reader bug in the child is a ReadError too (logged).
    """
    from datasets.intake.parsed import ReadError
    from datasets.intake.readers import MAX_BYTES, load_bytes

    limits = limits or ReadLimits()
    data = load_bytes(source, max_bytes or MAX_BYTES)
    request = pickle.dumps((data, file_name, kind, max_bytes or MAX_BYTES), protocol=pickle.HIGHEST_PROTOCOL)
    proc = _spare.take(limits)
    try:
        out, err = proc.communicate(request, timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        _discard(proc)
        raise _limit_error(f"读取超过 {limits.seconds:g} 秒仍未完成，已中止") from None
    finally:
        _spare.refill(limits)
    outcome = None
    if proc.returncode == 0 and out:
        try:
            outcome = pickle.loads(out)
        except Exception:  # a truncated answer: the child died while writing
            outcome = None
    if isinstance(outcome, tuple) and outcome[0] == "ok":
        return outcome[1]
    if isinstance(outcome, tuple) and outcome[0] == "error":
        raise ReadError(outcome[1], outcome[2])
    if isinstance(outcome, tuple) and outcome[0] == "memory":
        raise _limit_error(f"读取所需内存超过 {limits.memory_mb:,} MB 上限")
    if isinstance(outcome, tuple) and outcome[0] == "crash":
        log.error("reading %s failed in the child: %s", file_name, outcome[1])
        raise ReadError(f"文件无法读取：读取时出现意外错误（{outcome[2]}）。请确认文件能在 Excel 中正常打开，或从系统重新导出后上传。",
                        "file_unreadable")
    text = err.decode("utf-8", "replace")[-2000:]
    log.warning("reading %s: child exited with %s: %s", file_name, proc.returncode, text)
    if "memory allocation" in text or "MemoryError" in text or "out of memory" in text.lower():
        raise _limit_error(f"读取所需内存超过 {limits.memory_mb:,} MB 上限，读取进程已中止")
    if proc.returncode is not None and proc.returncode < 0 and -proc.returncode in (9, 24):  # SIGKILL, SIGXCPU
        raise _limit_error("读取进程因超出资源限制被终止")
    raise _limit_error(f"读取进程异常退出（退出码 {proc.returncode}）")


def _peak_mb() -> tuple[int, int]:
    """(VmPeak, VmHWM) of this process in MiB: address space and resident peak."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmPeak"].split()[0]) >> 10, int(status["VmHWM"].split()[0]) >> 10


def _warm_up(read_file: Any) -> None:
    """Read a two-line CSV while waiting for the request: the first read in a process pays ~0.2 s of
    one-time set-up (Polars' thread pool, compiled expressions) that would otherwise delay the answer."""
    from datasets.domain.schema import KINDS

    fields = KINDS["cases"].fields
    text = ",".join(f.header for f in fields) + "\n" + ",".join("1" for _ in fields) + "\n"
    try:
        read_file(text.encode("utf-8"), "warm-up.csv")
    except Exception:  # only the time matters
        pass


def _child(memory_mb: int, cpu_seconds: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
    import resource

    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    try:
        from datasets.intake.parsed import ReadError
        from datasets.intake.readers import read_file
    except MemoryError:
        pickle.dump(("memory",), stdout)
        return
    _warm_up(read_file)
    raw = stdin.read()
    if not raw:  # the parent went away without a request (a spare at exit)
        return
    data, file_name, kind, max_bytes = pickle.loads(raw)
    try:
        outcome: tuple = ("ok", read_file(data, file_name, kind=kind, max_bytes=max_bytes))
    except ReadError as exc:
        outcome = ("error", exc.message, exc.rule)
    except MemoryError:
        outcome = ("memory",)
    except Exception as exc:  # a reader bug: reported, not a traceback on the page
        import traceback

        outcome = ("crash", traceback.format_exc()[-4000:], type(exc).__name__)
    if os.environ.get("READ_CHILD_PEAK"):  # measurements (benchmarks/README)
        print("peak MiB (VmPeak, VmHWM):", _peak_mb(), file=sys.stderr)
    try:
        pickle.dump(outcome, stdout, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        return  # no answer: the parent reports the memory limit from the exit
    stdout.flush()


if __name__ == "__main__":
    # -P keeps this file's folder off sys.path (a module there named like a standard one would shadow it);
    # the project root is added instead. Anything a library prints goes to stderr, not into the answer.
    sys.path.insert(0, str(ROOT))
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _child(int(sys.argv[1]), int(sys.argv[2]), sys.stdin.buffer, answer)
    answer.close()
