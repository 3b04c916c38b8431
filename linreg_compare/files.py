"""Writing the outputs: only to regular files, all of them whole or none of them.

Each output is checked before the run starts; at the end each is written to a temporary file beside
its target and, once all are written, each is renamed onto its target. A failure or Ctrl-C before the
renames leaves every existing output as it was and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import stat
import sys

from linreg_compare.checks import UsageError
from linreg_compare.read import DATA_SUFFIXES, data_files, many_files


def check_output(path: str | None, flag: str) -> None:
    """Refuse, before any work, a path that is not a regular file we can replace: one line naming ``flag``.

    Symbolic links are refused rather than followed, so that a link never turns a report into an
    overwrite of the file it points to (``/dev/null`` for one).
    """
    if path is None:
        return
    if path == "":
        raise UsageError(f"{flag} must name a file; got an empty path")
    if os.path.islink(path):
        raise UsageError(f"{flag} {path} is a symbolic link; name the file itself (links are not followed)")
    if os.path.exists(path):
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise UsageError(f"{flag} {path} is a directory; name a file in it")
        if not stat.S_ISREG(mode):
            raise UsageError(f"{flag} {path} is not a regular file (a device, pipe or socket); name a regular file")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"{flag} {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: the directory {directory} is not writable")


def check_not_input(path: str | None, flag: str, data: str | None) -> None:
    """Refuse, before any work, an output that is a ``--data`` file or that ``--data`` would read as data
    next time: a file in its directory with a data file's suffix, or a path its glob matches.

    Paths are compared after resolving ``.``, ``..`` and links, and an existing output also by its inode
    (a hard link to the data is the data).
    """
    if path in (None, "", "-") or data is None:
        return
    candidates = {os.path.abspath(path), os.path.realpath(path)}
    if os.path.isdir(data):
        folders = {os.path.abspath(data), os.path.realpath(data)}
        if any(os.path.dirname(name) in folders and name.lower().endswith(DATA_SUFFIXES) for name in candidates):
            raise UsageError(f"{flag} {path} is in the --data directory {data}: the next run would read it as data")
    elif many_files(data):
        # A glob matches name by name, as glob.glob does: '*' never crosses a '/'.
        pattern = os.path.abspath(data)
        if any(pathlib.PurePath(name).match(pattern) for name in candidates):
            raise UsageError(f"{flag} {path} matches --data {data!r}: the next run would read it as data")
    for name in _files_named(data):
        if os.path.realpath(name) in candidates or (os.path.exists(path) and os.path.samefile(path, name)):
            raise UsageError(f"{flag} {path} is the input file {name} (--data); writing it would destroy the data")


def _files_named(data: str) -> list[str]:
    """The files ``--data`` names now (none if it names none: reading it says so)."""
    try:
        return data_files(data)
    except UsageError:
        return []


@contextlib.contextmanager
def staged_outputs():
    """``stage(path, write)`` writes each output to a temporary file; on leaving the block without an
    error, all of them are renamed onto their targets, else all are deleted."""
    staged = []  # (temporary, target)

    def stage(path: str, write) -> None:
        temporary = os.path.join(
            os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp"
        )
        # 0o666 through the umask, as open(path, "w") would create it; an existing file keeps its mode.
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        staged.append((temporary, path))
        try:
            write(temporary)
            if os.path.exists(path):
                os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        except OSError as exc:
            raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None

    try:
        yield stage
    except BaseException:
        for temporary, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise
    for temporary, path in staged:
        os.replace(temporary, path)


def write_atomically(path: str, write) -> None:
    """Call ``write(temporary_path)``, then rename the result onto ``path``: a failure leaves the old file."""
    with staged_outputs() as stage:
        stage(path, write)


def write_text(path: str | None, text: str) -> None:
    """``text`` to ``path`` whole, or to standard output when ``path`` is None or "-"."""
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    write_atomically(path, lambda temporary: write_utf8(temporary, text))


def write_utf8(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as file:
        file.write(text)
