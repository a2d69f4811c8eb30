"""The peak resident memory of this process, per stage: Linux keeps a high-water mark (VmHWM) that writing 5
to /proc/self/clear_refs resets to the current size. Elsewhere there is no per-stage peak: None."""

from __future__ import annotations

from pathlib import Path

_STATUS, _CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def reset_peak() -> bool:
    """Start a new high-water mark at the current size; False where the system has none to reset."""
    try:
        _CLEAR.write_text("5")
    except OSError:
        return False
    return True


def peak_bytes() -> int | None:
    """The high-water mark since the last reset_peak(), in bytes."""
    try:
        lines = _STATUS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return None
