"""``scaloquant reproduce``: bad input is refused with one line and exit code 2, before any work."""

import pytest

from _shared import argparse_error_line, one_error_line
from scaloquant.cli import main
from scaloquant.errors import ConfigError
from scaloquant.reproduce import reproduce


def test_unknown_preset_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--preset", "huge", "--out", "x"])
    assert exc.value.code == 2
    argparse_error_line(capsys, "reproduce", "argument --preset: invalid choice: 'huge'")


def test_unknown_preset_in_the_library(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        reproduce("huge", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_non_empty_folder_without_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["reproduce", "--preset", "tiny", "--out", str(out)]) == 2
    assert "--overwrite" in one_error_line(capsys, "reproduce")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder left


def test_output_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "run"
    out.write_text("mine")
    assert main(["reproduce", "--preset", "tiny", "--out", str(out), "--overwrite"]) == 2
    assert "is a file" in one_error_line(capsys, "reproduce")
    assert out.read_text() == "mine"


def test_too_small_test_set(tmp_path, capsys):
    assert (
        main(["reproduce", "--preset", "tiny", "--out", str(tmp_path / "r"), "--n-test", "1"]) == 2
    )
    assert "--n-test (the test set's signals) must be a whole number >= 2" in one_error_line(
        capsys, "reproduce"
    )
    assert not (tmp_path / "r").exists()


def test_bad_bootstrap_count_is_refused_before_training(tmp_path, capsys):
    assert (
        main(["reproduce", "--preset", "tiny", "--out", str(tmp_path / "r"), "--n-boot", "0"]) == 2
    )
    assert "bootstrap" in one_error_line(capsys, "reproduce")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("snr", "message"),
    [
        ("inf,abc", "cannot read 'abc' as an SNR"),
        ("0", "must be > 0"),
        ("30,30", "listed twice"),
    ],
)
def test_bad_snr_list_is_refused_before_training(tmp_path, capsys, snr, message):
    out = tmp_path / "r"
    assert main(["reproduce", "--preset", "tiny", "--out", str(out), "--snr", snr]) == 2
    assert message in one_error_line(capsys, "reproduce")
    assert not out.exists()


def test_fit_count_must_be_positive(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["reproduce", "--preset", "tiny", "--out", str(out), "--fit-n", "0"]) == 2
    assert "--no-fit" in one_error_line(capsys, "reproduce")
    assert not out.exists()


def test_fit_count_and_no_fit_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "reproduce",
                "--preset",
                "tiny",
                "--out",
                str(tmp_path / "r"),
                "--no-fit",
                "--fit-n",
                "5",
            ]
        )
    assert exc.value.code == 2
    argparse_error_line(capsys, "reproduce", "argument --fit-n: not allowed with argument")


def test_snr_summary_lines(capsys):
    from scaloquant.cli.reproduce import print_snr_summary

    def method(rmse):
        return {"mean": {"rmse": rmse}}

    print_snr_summary(
        {
            "inf": {"subset": None, "crlb": None, "n_signals": 200, "methods": {"a": method(0.2)}},
            "30": {
                "subset": {"n_signals": 8, "methods": {"a": method(0.25), "fit": method(0.11)}},
                "crlb": {"mean": {"rms_sd": 0.1}},
                "n_signals": 200,
                "methods": {"a": method(0.24)},
            },
        }
    )
    assert capsys.readouterr().out.splitlines() == [
        "noiseless: mean RMSE on 200 signals: a 0.2",
        "SNR 30: mean RMSE on 8 signals: a 0.25, fit 0.11, CRLB (RMS) 0.1",
    ]
