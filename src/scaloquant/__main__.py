"""``python -m scaloquant``: the same entry point as the ``scaloquant`` command (Lightning's DDP
launcher re-runs this module in one process per extra device)."""

from .cli import run

if __name__ == "__main__":
    run()
