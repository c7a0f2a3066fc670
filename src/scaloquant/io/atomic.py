"""Atomic output: write to a temporary file beside the target, then rename over it.

A failed or interrupted write leaves no partial file and never touches an existing one.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath

from ..errors import InputFileError, OutputExistsError


def check_writable(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; refuse a missing parent folder or one
    that cannot be written (so that commands refuse it before their work, not after)."""
    path = Path(path)
    # a folder first: '--overwrite to replace it' would only lead to this refusal
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it")
    if not path.parent.exists():
        raise InputFileError(f"folder {path.parent} does not exist; create it first")
    _probe_writable(path.parent, path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    The temporary file keeps the target's suffix(es), so libraries that pick a format by
    extension (nibabel: ``.nii.gz``) still do.
    """
    path = check_writable(path, overwrite=overwrite)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file 0600; give the output the permissions a plain open()
        # would. After the writer: one that replaces the file keeps its own temporary's 0600
        # (fslpy's Image.save, under nifti-mrs: simulate's and convert's NIfTI outputs were
        # readable by their owner alone)
        umask = os.umask(0)
        os.umask(umask)
        tmp_path.chmod(0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return Path(path)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _probe_writable(folder: Path, target: Path) -> None:
    """Create and remove a hidden folder in ``folder``: the one test of writability that holds
    for root too (``os.access`` says yes to root on a read-only bind mount)."""
    if not folder.is_dir():
        raise InputFileError(f"{folder} is a file, so {target} cannot be made; choose another path")
    try:
        probe = tempfile.mkdtemp(prefix=".scaloquant-probe-", dir=folder)
        os.rmdir(probe)
    except OSError as err:
        raise InputFileError(
            f"cannot write {target} ({folder}: {err.strerror}); choose a place you can write to"
        ) from None


def check_output_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check, before any work, that :func:`staged_directory` can write ``path``.

    Refuses a file at ``path``, a non-empty folder unless ``overwrite``, and a place that
    cannot be written (the folder itself, or the nearest existing folder above it, where the
    missing ones would be made). Returns the absolute path.
    """
    # absolute, so that "." has a name and a parent to stage beside (symlinks are kept)
    path = Path(os.path.abspath(path))
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path} is a file; give a folder for the outputs")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{path} is not empty; pass --overwrite to replace scaloquant's outputs in it "
            "(other files there are kept) or choose another folder"
        )
    # the staging folder is made beside path, the outputs are moved into it
    _probe_writable(_nearest_existing(path.parent), path)
    if path.is_dir():
        _probe_writable(path, path)
    return path


@contextlib.contextmanager
def staged_directory(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    replaces: Iterable[str | os.PathLike] = (),
) -> Iterator[Path]:
    """Yield a hidden staging folder beside ``path``; on success move its content into ``path``.

    For a command that writes a folder of outputs (``reproduce``, ``evaluate``): nothing appears
    in ``path`` until every output was written, and a failure leaves ``path`` as it was.

    * ``path`` missing: the staging folder is renamed to ``path`` (one rename).
    * ``path`` an empty folder: the staged files are moved into it.
    * ``path`` a non-empty folder: refused unless ``overwrite``; with ``overwrite`` each staged
      file replaces the file at the same relative path, the files of ``replaces`` (paths
      relative to ``path``: the outputs of an earlier run) that this run did not produce are
      removed once the new ones are in place, and every other file (the user's) is kept.

    Missing parent folders are created, as for ``mkdir -p``. Commands that compute for long
    call :func:`check_output_dir` first, so that a bad ``path`` is refused before the work. The
    staging folder's name says which host and process made it; staging folders of ``path``
    left by killed runs are removed when the next run starts (:func:`_remove_abandoned`).
    """
    path = check_output_dir(path, overwrite=overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(path)
        # os.mkdir (not mkdtemp, which makes it private) so the outputs get the usual permissions
        staging = path.parent / f".{path.name}.partial-{_owner()}{secrets.token_hex(6)}"
        staging.mkdir()
    except OSError as err:
        raise InputFileError(f"cannot create the output folder {path}: {err.strerror}") from None
    try:
        yield staging
        made = _move_into_place(staging, path, overwrite=overwrite)
        if overwrite:
            _remove_stale(path, replaces, keep=made)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _owner(pid: int | None = None) -> str:
    """The staging folder's owner as 16 hex digits: this host's name (CRC-32) and a process id
    (default this one's), so that a later run can tell a folder whose run was killed."""
    host = zlib.crc32(socket.gethostname().encode()) & 0xFFFFFFFF
    return f"{host:08x}{(os.getpid() if pid is None else pid) & 0xFFFFFFFF:08x}"


def _remove_abandoned(path: Path) -> None:
    """Remove the staging folders of ``path`` left by runs on this host whose process no longer
    exists: a run killed outright (``SIGKILL``, the out-of-memory killer) cannot remove its own,
    and it may hold gigabytes of simulated signals and checkpoints. A folder of a live process
    (a run writing the same place now), of another host (a shared file system) or of the
    former name format is left. POSIX only (Windows has no harmless ``kill(pid, 0)``)."""
    if os.name != "posix":
        return
    host = _owner()[:8]
    pattern = re.compile(rf"\.{re.escape(path.name)}\.partial-{host}([0-9a-f]{{8}})[0-9a-f]{{12}}")
    for folder in path.parent.iterdir():
        found = pattern.fullmatch(folder.name)
        if not found or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            os.kill(int(found.group(1), 16), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # a process of another user: alive
            continue


def _remove_stale(path: Path, replaces: Iterable[str | os.PathLike], keep: set[PurePath]) -> None:
    """Remove the earlier outputs ``replaces`` (relative to ``path``) not in ``keep``, and the
    folders they leave empty; a path outside ``path`` is ignored."""
    for rel in {PurePath(r) for r in replaces} - keep:
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            continue
        target = path / rel
        if target.is_file() or target.is_symlink():
            target.unlink()
            for parent in list(target.parents)[: len(rel.parts) - 1]:
                if parent.is_dir() and not any(parent.iterdir()):
                    parent.rmdir()


def _move_into_place(staging: Path, path: Path, *, overwrite: bool) -> set[PurePath]:
    """Move the staged files into ``path``; returns their paths relative to it."""
    files = sorted(p.relative_to(staging) for p in staging.rglob("*") if not p.is_dir())
    if not path.exists():
        os.replace(staging, path)
        return set(files)
    # Check every destination before moving anything, so a conflict changes nothing.
    for rel in files:
        target = path / rel
        if target.exists() and not overwrite:  # appeared while the outputs were being made
            raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it")
        if target.is_dir():
            raise OutputExistsError(f"{target} is a folder where an output file belongs; move it")
        for parent in list(target.parents)[: len(rel.parts) - 1]:
            if parent.exists() and not parent.is_dir():
                raise OutputExistsError(
                    f"{parent} is a file where an output folder belongs; move it"
                )
    # Each file this run replaces is first moved aside into the staging folder (removed with
    # it), so that a move refused half-way (a file that cannot be replaced: another user's in a
    # sticky folder, an immutable one) puts every file moved so far back as it was: the folder
    # never holds one run's results.csv beside another run's results.json
    aside = staging / f".replaced-{secrets.token_hex(4)}"
    started: list[tuple[PurePath, bool]] = []  # (file, whether it replaces one), before its moves
    made: list[Path] = []  # folders made for the outputs, outermost first
    try:
        for rel in files:
            target = path / rel
            for parent in reversed(list(target.parents)[: len(rel.parts) - 1]):
                if not parent.exists():
                    parent.mkdir()
                    made.append(parent)
            replaced = target.exists() or target.is_symlink()
            # noted before its two moves, so that an interruption between them (Ctrl-C, or
            # SIGTERM, which the CLI raises as KeyboardInterrupt) is undone too: the file moved
            # aside would otherwise go with the staging folder
            started.append((rel, replaced))
            if replaced:
                (aside / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(target, aside / rel)
            os.replace(staging / rel, target)
    except BaseException:
        _put_back(staging, path, aside, started, made)
        raise
    return set(files)


def _put_back(
    staging: Path,
    path: Path,
    aside: Path,
    started: list[tuple[PurePath, bool]],
    made: list[Path],
) -> None:
    """Undo :func:`_move_into_place`'s moves of the files ``started`` (the file each replaced
    moved back from ``aside`` over the new one; a new file that replaced none removed, where it
    left ``staging``) and remove the folders it ``made``; best effort (what cannot be undone
    stays: the error that stopped the moves is the one reported)."""
    for rel, replaced in reversed(started):
        with contextlib.suppress(OSError):
            if replaced:
                if (aside / rel).exists() or (aside / rel).is_symlink():
                    os.replace(aside / rel, path / rel)
            elif not (staging / rel).exists():
                (path / rel).unlink()
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()
