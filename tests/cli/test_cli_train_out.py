"""``scaloquant train --out DIR`` into a folder that holds files: refused as ``quantify``,
``fit``, ``evaluate`` and ``reproduce`` refuse it (one line naming ``--overwrite``, exit 2,
nothing written), and with ``--overwrite`` the run's outputs are written and the user's files
kept. Until session 36 ``train`` refused only its own files that were there (the checkpoint,
``train_config.yaml``) and wrote beside any other."""

from __future__ import annotations

import pytest

from _shared import one_error_line
from scaloquant.cli import main

#: The cheapest run of each kind of model (a few steps; the refusals come before any).
TINY = {
    "spectrum_physics": ["--preset", "tiny", "--max-steps", "2"],
    "spectrum_cnn": ["--preset", "tiny"],
}


def _tree(folder) -> list[str]:
    """Every path under ``folder``, relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("model", list(TINY))
def test_train_into_a_folder_that_holds_files_is_refused_and_nothing_written(
    tmp_path, capsys, model
):
    out = tmp_path / "run"
    (out / "mine").mkdir(parents=True)
    (out / "notes.txt").write_text("the user's")
    assert main(["train", "--model", model, *TINY[model], "--out", str(out)]) == 2
    line = one_error_line(capsys, "train")
    assert f"{out} is not empty; pass --overwrite to replace scaloquant's outputs" in line
    assert "--resume" not in line  # no interrupted run there to continue
    assert _tree(out) == ["mine", "notes.txt"]


def test_train_with_overwrite_writes_its_outputs_and_keeps_the_users_files(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    argv = ["train", "--model", "spectrum_physics", *TINY["spectrum_physics"], "--out", str(out)]
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "models" / "spectrum_physics.ckpt").is_file()
    assert (out / "train_config.yaml").is_file()
    assert (out / "notes.txt").read_text() == "the user's"
    # a second run into the folder it wrote: refused, and the checkpoint left as it was
    before = (out / "models" / "spectrum_physics.ckpt").read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    assert "pass --overwrite" in one_error_line(capsys, "train")
    assert (out / "models" / "spectrum_physics.ckpt").read_bytes() == before


def test_a_folder_of_an_interrupted_run_names_resume_too(tmp_path, capsys):
    """The folder of a run stopped after a checkpoint was saved: the refusal says --resume
    continues it (``--resume`` itself passes the check: test_train_interrupt_says_how_to_resume)."""
    out = tmp_path / "run"
    last = out / "models" / ".spectrum_cnn.partial" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")
    assert main(["train", "--model", "spectrum_cnn", *TINY["spectrum_cnn"], "--out", str(out)]) == 2
    line = one_error_line(capsys, "train")
    assert "pass --overwrite" in line
    assert line.endswith(f"or pass --resume to continue the interrupted run from {last}")
    assert _tree(out) == ["models", "models/.spectrum_cnn.partial", str(last.relative_to(out))]
