"""Writing the outputs whole or not at all: to a temporary file beside the target, then renamed onto it."""

from __future__ import annotations

import os
import sys
import tempfile


def write_atomically(path: str, write) -> None:
    """Call ``write(temporary_path)``, then rename the result onto ``path``: a failure leaves the old file."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_text(path: str | None, text: str) -> None:
    if path is None or path == "-":
        sys.stdout.write(text)
        return

    def write(temporary):
        with open(temporary, "w", encoding="utf-8", newline="") as file:
            file.write(text)

    write_atomically(path, write)
