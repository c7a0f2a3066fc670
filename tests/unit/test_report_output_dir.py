"""``staged_directory``: a folder of outputs appears whole or not at all, user files survive."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaloquant.errors import OutputExistsError
from scaloquant.io.atomic import _owner, staged_directory


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


@pytest.mark.skipif(os.name != "posix", reason="tells a dead process by kill(pid, 0)")
def test_staging_folders_of_killed_runs_are_removed_others_kept(tmp_path):
    """A run killed outright leaves its hidden staging folder; the next run into the same
    place removes those whose process is gone on this host, and only those."""
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(ended.stdout)  # its process has ended (and was reaped by run)
    out = tmp_path / "out"
    other_host = f"{(int(_owner()[:8], 16) + 1) & 0xFFFFFFFF:08x}{dead:08x}"
    left = {
        "killed": f".out.partial-{_owner(dead)}0123456789ab",
        "running": f".out.partial-{_owner(os.getppid())}0123456789ab",  # alive: a run now
        "other host": f".out.partial-{other_host}0123456789ab",
        "former name": ".out.partial-0123456789ab",
        "another output": f".other.partial-{_owner(dead)}0123456789ab",
    }
    for name in left.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "big.h5").write_text("x")
    with staged_directory(out) as stage:
        (stage / "metrics.json").write_text("1")
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"out", *(v for k, v in left.items() if k != "killed")}
    assert (out / "metrics.json").read_text() == "1"


def _unreplaceable(folder):
    """Make the files in ``folder`` impossible to replace, as another user's files in a sticky
    folder are: the folder read-only for a plain user, the file immutable for root (chattr);
    returns the undo, or None where this machine allows neither (the test then skips)."""
    folder.chmod(0o555)
    probe = folder / ".probe"
    try:
        probe.write_text("")
    except OSError:
        return lambda: folder.chmod(0o755)
    probe.unlink()
    folder.chmod(0o755)  # root writes anyway: mark the file immutable instead
    target = next(folder.iterdir())
    done = subprocess.run(["chattr", "+i", str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        return None
    return lambda: subprocess.run(["chattr", "-i", str(target)], check=False)


def test_an_interruption_between_a_files_two_moves_puts_the_outputs_back(tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM, which the CLI raises as KeyboardInterrupt) after an old output was
    moved aside and before the new one took its place: every output is put back as it was, the
    old file too (it was in the staging folder, which goes), and nothing is left half-way (the
    interruption injected at that os.replace: a real one lands there by chance only)."""
    from scaloquant.io import atomic

    out = tmp_path / "out"
    with staged_directory(out) as stage:
        for name in ("a.txt", "sub/b.txt", "z.txt"):
            (stage / name).parent.mkdir(exist_ok=True)
            (stage / name).write_text("old")
    real_replace = os.replace

    def interrupted(src, dst):
        if Path(src).name == "b.txt" and ".partial-" in str(src) and ".replaced-" not in str(src):
            raise KeyboardInterrupt  # sub/b.txt moved aside, the new one not yet in place
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with staged_directory(out, overwrite=True) as stage:
            for name in ("a.txt", "sub/b.txt", "z.txt", "new/c.txt"):
                (stage / name).parent.mkdir(exist_ok=True)
                (stage / name).write_text("new")
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    texts = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert texts == {"a.txt": "old", "sub/b.txt": "old", "z.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left


def test_a_move_refused_half_way_puts_the_earlier_outputs_back(tmp_path):
    # the outputs are moved in sorted order: a.txt, then sub/b.txt (refused), then z.txt.
    # Before: a.txt was the new run's and z.txt the old run's (one folder, two runs' results)
    # under the claim "no partial output was left"
    out = tmp_path / "out"
    with staged_directory(out) as stage:
        for name in ("a.txt", "sub/b.txt", "z.txt"):
            (stage / name).parent.mkdir(exist_ok=True)
            (stage / name).write_text("old")
    undo = _unreplaceable(out / "sub")
    if undo is None:
        pytest.skip("neither a read-only folder nor chattr +i stops this user replacing a file")
    try:
        with pytest.raises(OSError):
            with staged_directory(out, overwrite=True) as stage:
                for name in ("a.txt", "sub/b.txt", "z.txt", "new/c.txt"):
                    (stage / name).parent.mkdir(exist_ok=True)
                    (stage / name).write_text("new")
    finally:
        undo()
    texts = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert texts == {"a.txt": "old", "sub/b.txt": "old", "z.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left
