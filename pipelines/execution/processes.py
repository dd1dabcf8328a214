"""OS processes: starting a Layerlab child process, and telling whether a pid still lives.

One place builds a child's command environment (the repo root on PYTHONPATH), for the scheduler's
workers and for the benchmarks alike.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with the repo root first on PYTHONPATH, so `python -m pipelines`
    works from any working directory."""
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath, **(extra or {})}


def pipelines_command(*args: str) -> list[str]:
    """`python -m pipelines ARGS` with this interpreter."""
    return [sys.executable, "-m", "pipelines", *args]


def spawn_detached(command: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start `command` in a session of its own (it outlives a server restart), output to `log_path`,
    with `env` added to this process's environment."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(list(command), cwd=REPO_ROOT, env=child_env(env), stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def pid_alive(pid: int | None) -> bool:
    """Whether `pid` is a live process; a zombie answers kill(0) but will never work again."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def kill(pid: int | None, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to `pid` if it is alive; a process that exits meanwhile is not an error."""
    if pid and pid_alive(pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
