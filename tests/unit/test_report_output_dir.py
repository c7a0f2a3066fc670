"""``staged_directory``: a folder of outputs appears whole or not at all, user files survive."""

import pytest

from scaloquant.errors import OutputExistsError
from scaloquant.io.atomic import staged_directory


def _write_outputs(folder, text):
    (folder / "figures").mkdir()
    (folder / "figures" / "fig.png").write_text(text)
    (folder / "metrics.json").write_text(text)


def test_new_folder_appears_complete(tmp_path):
    out = tmp_path / "runs" / "quick"  # parents are created like mkdir -p
    with staged_directory(out) as stage:
        _write_outputs(stage, "1")
        assert not out.exists()  # nothing visible before the end
    assert (out / "metrics.json").read_text() == "1"
    assert (out / "figures" / "fig.png").read_text() == "1"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["quick"]  # no staging left


def test_empty_existing_folder_is_used(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with staged_directory(out) as stage:
        _write_outputs(stage, "1")
    assert (out / "metrics.json").read_text() == "1"


def test_non_empty_folder_needs_overwrite_and_is_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        with staged_directory(out):
            pass
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_overwrite_replaces_only_our_files(tmp_path):
    out = tmp_path / "out"
    with staged_directory(out) as stage:
        _write_outputs(stage, "old")
    (out / "notes.txt").write_text("mine")
    (out / "figures" / "my_plot.png").write_text("mine")
    with staged_directory(out, overwrite=True) as stage:
        _write_outputs(stage, "new")
    assert (out / "metrics.json").read_text() == "new"
    assert (out / "figures" / "fig.png").read_text() == "new"
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "figures" / "my_plot.png").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_directory(out) as stage:
            _write_outputs(stage, "1")
            raise RuntimeError("training crashed")
    assert list(tmp_path.iterdir()) == []


def test_conflict_changes_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "figures").write_text("a file where our folder goes")
    (out / "metrics.json").write_text("old")
    with pytest.raises(OutputExistsError, match="figures"):
        with staged_directory(out, overwrite=True) as stage:
            _write_outputs(stage, "new")
    assert (out / "metrics.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_file_is_not_a_folder(tmp_path):
    target = tmp_path / "out"
    target.write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        with staged_directory(target, overwrite=True):
            pass


def test_current_folder_as_output(tmp_path, monkeypatch):
    out = tmp_path / "here"
    out.mkdir()
    monkeypatch.chdir(out)
    with staged_directory(".") as stage:
        _write_outputs(stage, "1")
    assert (out / "metrics.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]
