"""``benchmarks/bench_invivo_ratios.py``'s ``--groups`` lines and its summary, with the fit
commands answered by canned rows (no fit runs): each grouping's command carries ``--groups
NAME``, its ratios are counted apart from the default fit's, and the summary's mean and largest
deviation are those of the rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_invivo_ratios as bench  # noqa: E402

SPANT = bench.SPANT


def _row(scale: float) -> dict[str, str]:
    """A results.csv row whose ratios to tCr are spant's LCModel ratios times ``scale``."""
    return {f"{key}_ratio_tcr": str(scale * value) for key, value in SPANT.items()}


def test_groups_lines_run_with_the_grouping_and_count_apart(monkeypatch, capsys, tmp_path):
    if not bench.INVIVO.is_dir():
        pytest.skip("../shared/data/invivo is absent")
    commands: list[list[str]] = []

    def fake_run_case(cmd, out, verbose):
        commands.append(cmd)
        # the default fit 10 % high (within spant's 15 %), the grouping's 20 % low (outside)
        return _row(0.8 if "--groups" in cmd else 1.1)

    monkeypatch.setattr(bench, "run_case", fake_run_case)
    code = bench.main(
        [str(tmp_path), "--cases", "spant-default", "--groups", "metabolites_and_each_mm"]
    )
    assert code == 0
    assert len(commands) == 2
    assert "--groups" not in commands[0]
    grouped = commands[1]
    assert grouped[grouped.index("--groups") + 1] == "metabolites_and_each_mm"
    assert grouped[grouped.index("--out") + 1] == str(
        tmp_path / "spant-default-groups-metabolites_and_each_mm"
    )
    lines = capsys.readouterr().out.splitlines()
    assert "ratios outside tolerance, fit: 0 of 4, mean |diff| 10.0%, largest 10.0%" in lines
    assert (
        "ratios outside tolerance, --groups metabolites_and_each_mm: 4 of 4, "
        "mean |diff| 20.0%, largest 20.0%" in lines
    )


def test_unknown_grouping_refused(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        bench.main([str(tmp_path), "--groups", "each_mm"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'each_mm'" in capsys.readouterr().err


def test_summary_without_deviations_is_the_count_alone():
    assert bench.summary("fit", 1, []) == "ratios outside tolerance, fit: 1"
    assert bench.summary("fit", 0, [0.05, -0.15]) == (
        "ratios outside tolerance, fit: 0 of 2, mean |diff| 10.0%, largest 15.0%"
    )
