"""``scaloquant quantify --help`` and ``fit --help`` start without the trainer or the plotting
library (each takes seconds to import), checked in a fresh interpreter's ``sys.modules``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("lightning", "pytorch_lightning", "lightning_fabric", "matplotlib")


@pytest.mark.parametrize(
    ("command", "heavy"),
    [
        # quantify's options need nothing numerical: not even torch or scipy
        ("quantify", (*HEAVY, "torch", "scipy")),
        ("fit", HEAVY),  # its --preset choices come from scaloquant.fit (numpy, scipy, torch)
    ],
)
def test_help_imports_neither_lightning_nor_matplotlib(command, heavy):
    code = (
        "import sys\n"
        "from scaloquant.cli import main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.rstrip().splitlines()[-1] == "[]"
