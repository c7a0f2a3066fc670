"""``kill`` (SIGTERM) of a running command: it ends as on Ctrl+C, with one line, exit 143, no
output and no partial folder, and none of its worker processes left computing.

A real ``scaloquant reproduce --preset tiny`` in its own process, terminated while its four
trainings run in worker processes (``scaloquant.threads.run_in_processes``); Linux only (the
workers are found through ``/proc``).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc"
)


def _children(pid: int) -> list[int]:
    """The running processes whose parent is ``pid`` and that run a ``multiprocessing`` worker
    (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = (entry / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if int(ppid) == pid and state != "Z" and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def test_sigterm_ends_reproduce_and_its_workers_and_leaves_nothing(tmp_path, process_running):
    out = tmp_path / "tiny"
    cmd = [sys.executable, "-m", "scaloquant", "reproduce", "--preset", "tiny", "--out", str(out)]
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while len(workers := _children(run.pid)) < 2:
            assert run.poll() is None, f"reproduce ended before its trainings: {run.stderr.read()}"
            assert time.monotonic() < deadline, "reproduce never started its worker processes"
            time.sleep(0.2)
        time.sleep(3)  # into the trainings (Lightning's own SIGTERM handling is in place)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 128 + signal.SIGTERM
    lines = err.strip().splitlines()
    assert lines[-1] == "scaloquant reproduce: terminated (SIGTERM); no output was written"
    assert "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left
    deadline = time.monotonic() + 10
    while any(process_running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [w for w in workers if process_running(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, "worker processes still ran after the command ended"
