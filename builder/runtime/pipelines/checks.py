"""Checks of what apps pass to a pipeline, done once where the call comes in: each failure is a ValueError
that names the argument, shows its value, and says what is allowed."""

from __future__ import annotations

from typing import Any


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def texts(inputs: Any, task: str, name: str = "inputs") -> tuple[list[str], bool]:
    """(the texts, whether one text was given) from a text or a list/tuple of texts."""
    if isinstance(inputs, str):
        return [inputs], True
    if isinstance(inputs, (list, tuple)) and all(isinstance(t, str) for t in inputs):
        return list(inputs), False
    bad = (
        next((t for t in inputs if not isinstance(t, str)), None)
        if isinstance(inputs, (list, tuple))
        else None
    )
    got = f"a list holding {type(bad).__name__} {shown(bad)}" if isinstance(inputs, (list, tuple)) else (
        f"{type(inputs).__name__} {shown(inputs)}"
    )  # fmt: skip
    raise ValueError(f"{task}: {name} must be a text or a list of texts, got {got}")


def integer(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low) or (
        high is not None and value > high
    ):  # fmt: skip
        allowed = (
            f"between {low} and {high}" if low is not None and high is not None
            else f">= {low}" if low is not None else f"<= {high}" if high is not None else ""
        )  # fmt: skip
        raise ValueError(f"{name}={shown(value)}: give an integer {allowed}".rstrip())
    return value


def optional_integer(name: str, value: Any, low: int | None = None, high: int | None = None) -> int | None:
    return None if value is None else integer(name, value, low, high)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}={shown(value)}: give true or false")
    return value


def one_of(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"{name}={shown(value)}: use one of {', '.join(allowed)}")
    return value.lower()


def text_list(name: str, value: Any) -> list[str]:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"{name}={shown(value)}: give a list of texts")
