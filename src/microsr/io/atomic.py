"""Atomic output: write under a hidden partial name beside the target, then rename; clean up what is left."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
from pathlib import Path

from microsr.errors import InputError, OutputExistsError

PARTIAL_SUFFIX = ".partial"
# Letters tempfile.mkstemp drew its 8 random characters from; earlier microsr versions named
# partials ".<name>.<8 of these>.partial" and set replaced outputs aside as ".<name>.<8 hex>.old.partial".
_OLD_MIDDLE = re.compile(r"[a-z0-9_]{8}|[0-9a-f]{8}\.old")
_MIDDLE = re.compile(r"(?P<host>[A-Za-z0-9_]+)-(?P<pid>[0-9]+)-[0-9a-f]{8}(?:\.old)?")


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """Refuse an output that exists (unless ``overwrite``) or cannot be created there; create nothing.

    Missing parent folders are fine: the writers (:class:`PartialOutput` and all that use it)
    create them when they write, so a command that fails before writing leaves no empty folders.

    Parameters
    ----------
    path : str or Path
        The output file or folder (a ``.zarr`` store).
    overwrite : bool
        Whether an existing ``path`` may be replaced.

    Returns
    -------
    Path
        ``path`` as a Path.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    InputError
        If a folder on the way to ``path`` is a file or a broken link, or the nearest existing
        folder cannot be written to.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists: pass --overwrite to replace it, or choose another output")
    for folder in (path.parent, *path.parent.parents):
        if folder.is_dir():
            if not os.access(folder, os.W_OK | os.X_OK):
                raise InputError(f"cannot write {path}: no permission to write in the folder {folder}; "
                                 "choose an output folder you can write to")
            return path
        if folder.is_symlink() and not folder.exists():
            raise InputError(f"cannot write {path}: {folder} is a link to something that does not exist; "
                             "fix the link or choose another output folder")
        if folder.exists():
            raise InputError(f"cannot write {path}: {folder} is a file, not a folder; choose another output "
                             "path")
    return path


def _host() -> str:
    """This machine's name reduced to letters, digits and ``_``, as it appears in partial names."""
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:63] or "host"


def _partial_name(path: Path, old: bool = False) -> Path:
    """``.<name>.<host>-<pid>-<8 hex>.partial`` (``.old.partial`` for a replaced output) beside ``path``."""
    middle = f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}{'.old' if old else ''}"
    return path.with_name(f".{path.name}.{middle}{PARTIAL_SUFFIX}")


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine; when that cannot be told, True (keep its files)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    if os.name == "nt":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0 delivers nothing: it only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's process
        return True
    return True


def _windows_process_alive(pid: int) -> bool:
    # os.kill(pid, 0) would terminate the process on Windows, so ask the kernel instead.
    try:
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists; invalid parameter: gone
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    except Exception:
        return True


def is_stale_partial(candidate: str | Path, path: str | Path) -> bool:
    """Whether ``candidate`` is a partial of output ``path`` left by a writer that no longer runs.

    The rule: a partial of ``path`` is named ``.<name>.<host>-<pid>-<8 hex>.partial`` (or
    ``….old.partial`` for a replaced output set aside) after the machine and the process writing
    it. It is stale when that process no longer runs on this machine, or when its name has the
    format of earlier versions (``.<name>.<8 random>.partial``, ``.<name>.<8 hex>.old.partial``),
    which no running writer uses. A partial from another machine (a shared file system) is never
    called stale: its writer may be alive there. Other names, such as the resumable
    ``.<name>.partial`` of ``microsr.pipelines.selfsup``, are not partials of this kind.

    Parameters
    ----------
    candidate : str or Path
        A file or folder name (only the name is read).
    path : str or Path
        The output whose partials are sought.

    Returns
    -------
    bool
        True when ``candidate`` may be deleted.
    """
    name, prefix = Path(candidate).name, f".{Path(path).name}."
    if not (name.startswith(prefix) and name.endswith(PARTIAL_SUFFIX)
            and len(name) > len(prefix) + len(PARTIAL_SUFFIX)):
        return False
    middle = name[len(prefix):-len(PARTIAL_SUFFIX)]
    if _OLD_MIDDLE.fullmatch(middle):
        return True
    match = _MIDDLE.fullmatch(middle)
    return bool(match) and match["host"] == _host() and not _process_alive(int(match["pid"]))


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Delete the stale partials of output ``path`` (see :func:`is_stale_partial`); returns them.

    A killed writer (SIGKILL, a power cut, a crash of the interpreter) cannot clean up after
    itself; the next write of the same output does it instead.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = [Path(entry.path) for entry in os.scandir(path.parent) if is_stale_partial(entry.name, path)]
    for partial in stale:
        remove_partial(partial)
    return stale


def remove_partial(temp: str | Path) -> None:
    """Delete a temporary file or folder; missing is fine."""
    temp = Path(temp)
    if temp.is_dir() and not temp.is_symlink():
        shutil.rmtree(temp, ignore_errors=True)
    else:
        temp.unlink(missing_ok=True)


def move_into_place(temp: str | Path, path: str | Path) -> None:
    """Rename a finished ``temp`` onto ``path``, replacing what is there."""
    temp, path = Path(temp), Path(path)
    if not (path.exists() and (path.is_dir() or temp.is_dir())):
        os.replace(temp, path)
        return
    # rename() cannot replace a folder (a Zarr store) or swap file and folder: move the old one
    # aside first, so a failure can put it back instead of losing both.
    old = _partial_name(path, old=True)
    os.replace(path, old)
    try:
        os.replace(temp, path)
    except BaseException:
        os.replace(old, path)
        raise
    remove_partial(old)


def _create_parents(path: Path) -> list[Path]:
    """Create the missing folders above ``path``; returns those created, outermost first."""
    missing = []
    for folder in (path.parent, *path.parent.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (outermost first) that are still empty, innermost first."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else wrote there meanwhile) or already gone
            return


class PartialOutput:
    """A new hidden partial file or folder beside ``path``: renamed onto it when complete, else deleted.

    Creating one creates the missing parent folders of ``path``, deletes the stale partials of
    ``path`` (see :func:`is_stale_partial`), and creates an empty file or folder
    ``.<name>.<host>-<pid>-<8 hex>.partial``, with the permissions a plain ``open`` would give.
    Being in the same folder as ``path`` makes the final rename atomic. Leaving the ``with``
    block without :meth:`publish` (an exception, or a KeyboardInterrupt: see
    :func:`terminate_as_interrupt`) deletes the partial and the folders created for it.

    Parameters
    ----------
    path : str or Path
        The output.
    directory : bool
        Make the partial a folder (a Zarr store) instead of a file.

    Attributes
    ----------
    temp : Path
        The partial to write into.

    Examples
    --------
    >>> with PartialOutput("out/result.bin") as partial:  # doctest: +SKIP
    ...     partial.temp.write_bytes(data)
    ...     partial.publish()
    """

    def __init__(self, path: str | Path, directory: bool = False):
        self.path = Path(path)
        self.published = False
        self._created = _create_parents(self.path)
        try:
            remove_stale_partials(self.path)
            self.temp = self._create(directory)
        except BaseException:
            _remove_if_empty(self._created)
            raise

    def _create(self, directory: bool) -> Path:
        while True:
            temp = _partial_name(self.path)
            try:
                if directory:
                    os.mkdir(temp, 0o777)  # the mode passes through the umask, as for plain mkdir
                else:
                    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                return temp
            except FileExistsError:  # the same 8 random hex digits twice: draw again
                continue

    def publish(self) -> None:
        """Rename the finished partial onto ``path``, replacing what is there."""
        move_into_place(self.temp, self.path)
        self.published = True

    def discard(self) -> None:
        """Delete the partial and the parent folders created for it, if they are empty."""
        remove_partial(self.temp)
        _remove_if_empty(self._created)

    def __enter__(self) -> PartialOutput:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if not self.published:
            self.discard()
        return False


def atomic_write_bytes(path: str | Path, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` through a :class:`PartialOutput` in the same folder and an atomic rename."""
    path = check_writable(path, overwrite)
    with PartialOutput(path) as partial:
        with open(partial.temp, "wb") as out:
            out.write(data)
        partial.publish()


def atomic_write_text(path: str | Path, text: str, overwrite: bool = True) -> None:
    """Write ``text`` (UTF-8) atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite)


def terminate_as_interrupt():
    """Make SIGTERM raise ``KeyboardInterrupt`` in the main thread, as Ctrl-C does.

    Python's default for SIGTERM is to die at once, skipping ``finally`` blocks and ``with``
    exits, so a job stopped by a scheduler (SLURM's ``scancel`` or time limit, ``docker stop``,
    ``kill``) would leave its partial output behind. With this handler the same cleanups run
    as for Ctrl-C. The first SIGTERM puts the previous handler back, so a second one ends the
    process at once; whatever that leaves is removed by the next write of the same output
    (:func:`remove_stale_partials`).

    Returns
    -------
    handler
        The previous SIGTERM handler, for ``signal.signal(signal.SIGTERM, previous)``.

    Raises
    ------
    ValueError
        When called outside the main thread (Python delivers signals there only).

    Examples
    --------
    >>> terminate_as_interrupt()  # doctest: +SKIP
    """
    def interrupt(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        raise KeyboardInterrupt(f"terminated by signal {signum} (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, interrupt)
    return previous
