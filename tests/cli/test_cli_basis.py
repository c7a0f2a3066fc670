"""``scaloquant basis info``, called in-process."""

from __future__ import annotations

import numpy as np
import pytest

from scaloquant.cli import main
from scaloquant.io import write_basis_npz
from scaloquant.signal import axes
from scaloquant.types import BasisSet

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["basis", "info", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("scaloquant basis info: error: ")
    for word in words:
        assert word in err


def test_default_basis_info(capsys):
    code, out, err = run(capsys)
    assert code == 0 and err == ""
    for fact in (
        "embedded default basis",
        "metabolites:            21",
        "points:                 2048",
        "dwell time:             0.25 ms",
        "spectral width:         4000 Hz",
        "123.261703 MHz",
        "2.895 T, nominal 3 T",
        "0 Hz = 4.65 ppm",
        "1H",
        "PRESS, TE 30 ms (TE1 11 ms, TE2 19 ms)",
        "CC BY-SA 4.0",
    ):
        assert fact in out, fact
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[-21:]}
    assert list(rows)[:3] == ["Mac", "Ala", "Asp"] and len(rows) == 21
    assert float(rows["NAA"][0]) == pytest.approx(2.006, abs=0.01)
    assert float(rows["Cr"][1]) == pytest.approx(5.0, abs=1e-3)  # 5 protons, singlet removed


def test_basis_file_info_and_plot(capsys, tmp_path):
    t = axes.time_axis_s(1024, 5e-4)
    fids = np.array(
        [np.exp((2j * np.pi * axes.ppm_to_hz(p, 297.2, 4.65) - 20) * t) for p in (2.01, 3.03)]
    )
    path = write_basis_npz(tmp_path / "b.npz", BasisSet(("NAA", "Cr"), fids, 5e-4, 297.2))
    plot = tmp_path / "b.png"
    code, out, err = run(capsys, str(path), "--plot", str(plot))
    assert code == 0, err
    assert "points:                 1024" in out and "dwell time:             0.5 ms" in out
    assert "6.980 T" in out  # 297.2 MHz / 42.577 MHz/T
    assert "sequence" not in out
    rows = {
        line.split()[0]: float(line.split()[1])
        for line in out.splitlines()
        if line.startswith(("NAA ", "Cr "))
    }
    assert rows == pytest.approx({"NAA": 2.01, "Cr": 3.03}, abs=0.005)
    assert plot.read_bytes()[:8] == PNG_MAGIC


def test_existing_plot_is_untouched_without_overwrite(capsys, tmp_path):
    plot = tmp_path / "b.png"
    plot.write_bytes(b"precious")
    code, out, err = run(capsys, "--plot", str(plot))
    assert_one_line_error(code, err, "already exists", "--overwrite")
    assert out == "" and plot.read_bytes() == b"precious"
    code, out, err = run(capsys, "--plot", str(plot), "--overwrite")
    assert code == 0 and plot.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["b.png"]  # no temporary file left


def test_raw_folder_needs_and_takes_acquisition_flags(capsys, tmp_path):
    t = axes.time_axis_s(512, 2.5e-4)
    fid = np.conj(np.exp((2j * np.pi * axes.ppm_to_hz(2.01, 123.2, 4.65) - 10) * t))
    for name in ("NAA", "Lac"):
        (tmp_path / f"{name}.RAW").write_text(
            " $NMID ID='x', FMTDAT='(2E16.8)' $END\n"
            + "".join(f"{z.real:16.8E}{z.imag:16.8E}\n" for z in fid)
        )
    code, _, err = run(capsys, str(tmp_path))
    assert_one_line_error(code, err, "Lac.RAW", "--dwell-time-s")
    code, _, err = run(capsys, str(tmp_path), "--dwell-time-s", "2.5e-4")
    assert_one_line_error(code, err, "--spectrometer-freq-mhz")
    code, out, err = run(
        capsys, str(tmp_path), "--dwell-time-s", "2.5e-4", "--spectrometer-freq-mhz", "123.2"
    )
    assert code == 0, err
    assert "Lac" in out and "NAA" in out and "2.010" in out


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("missing.BASIS", None, ("does not exist",)),
        ("x.xyz", "hello", ("unknown file format",)),
        (
            "bad.BASIS",
            " $SEQPAR HZPPPM = 123.2 $END\n $BASIS1 BADELT = 0.00025, NDATAB = 4 $END\n"
            " $BASIS METABO = 'A' $END\n 1.0 2.0 oops 4.0 5.0 6.0 7.0 8.0\n",
            ("'oops'",),
        ),
        (
            "nan.BASIS",
            " $SEQPAR HZPPPM = 123.2 $END\n $BASIS1 BADELT = 0.00025, NDATAB = 4 $END\n"
            " $BASIS METABO = 'A' $END\n 1.0 2.0 NaN 4.0 5.0 6.0 7.0 8.0\n",
            ("NaN/Inf",),
        ),
        (
            "short.BASIS",
            " $SEQPAR HZPPPM = 123.2 $END\n $BASIS1 BADELT = 0.00025, NDATAB = 4 $END\n"
            " $BASIS METABO = 'A' $END\n 1.0 2.0 3.0 4.0\n",
            ("truncated", "4 points"),
        ),
    ],
)
def test_bad_basis_files(capsys, tmp_path, name, content, words):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, str(path))
    assert_one_line_error(code, err, *words)
    assert out == ""


def test_flag_misuse(capsys, tmp_path):
    code, _, err = run(capsys, "--dwell-time-s", "2.5e-4")
    assert_one_line_error(code, err, "--dwell-time-s", "PATH")
    code, _, err = run(capsys, "--plot", str(tmp_path / "b.pdf"))
    assert_one_line_error(code, err, ".png")
    code, _, err = run(capsys, "--plot", str(tmp_path / "nofolder" / "b.png"))
    assert_one_line_error(code, err, "does not exist")


def test_convert_writes_an_lcmodel_basis_by_its_suffix(capsys, tmp_path):
    """``basis convert IN OUT.BASIS`` writes LCModel's format (any case of the suffix): read
    back, NAA at 2.01 ppm (it was at 2.01 on IN's 4.70 ppm reference; LCModel's 0 Hz is
    4.65), a name longer than LCModel keeps cut with a note; an existing OUT is kept without
    --overwrite, another suffix refused in one line."""
    t = axes.time_axis_s(1024, 5e-4)
    fids = np.array(
        [np.exp((2j * np.pi * axes.ppm_to_hz(p, 297.2, 4.70) - 20) * t) for p in (2.01, 3.03)]
    )
    basis = BasisSet(("NAA", "MM_measured"), fids, 5e-4, 297.2, ppm_reference=4.70)
    src = write_basis_npz(tmp_path / "b.npz", basis)
    out = tmp_path / "b.basis"
    assert main(["basis", "convert", str(src), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "basis: MM_measured written as 'MM_mea' (LCModel keeps 6 characters)" in printed
    code, info, err = run(capsys, str(out))
    assert code == 0, err
    rows = {line.split()[0]: float(line.split()[1]) for line in info.splitlines()[-2:]}
    assert rows == pytest.approx({"NAA": 2.01, "MM_mea": 3.03}, abs=0.005)
    out.write_text("precious")
    assert main(["basis", "convert", str(src), str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "precious"
    assert main(["basis", "convert", str(src), str(tmp_path / "b.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give a .npz (scaloquant's basis format) or .BASIS" in err
    assert not (tmp_path / "b.txt").exists()
