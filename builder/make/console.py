"""What a build prints, one write per line or block: the jobs of a parallel sweep share one stdout and stderr."""

from __future__ import annotations

import sys
from typing import TextIO


def print_whole(text: str, file: TextIO | None = None) -> None:
    """`text` and its newline in one write, then flushed. `print` writes them apart when Python runs unbuffered
    (PYTHONUNBUFFERED=1, common in containers), and another job's line then lands between the two."""
    stream = file or sys.stdout
    stream.write(text + "\n")
    stream.flush()
