"""How the command ends on a user's error: one line on stderr and the error's exit status."""

from __future__ import annotations

import os
import sys

from builder.errors import BuilderError


def fail(e: BuilderError) -> int:
    """Print `error: ...` (or raise it, with HYDRA_FULL_ERROR=1) and return its exit status."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise e
    print(f"error: {e}", file=sys.stderr)
    return e.exit_code
