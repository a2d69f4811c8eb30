"""The shape of the package, read from its source: no import circles, and the runtime (what apps load) imports
nothing from the build side and no build-time package, at module level or inside functions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1] / "builder"
BUILD_PACKAGES = (
    "torch",
    "transformers",
    "onnx",
    "hydra",
    "omegaconf",
    "datasets",
    "evaluate",
    "sentence_transformers",
)


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, name: str) -> set[str]:
    """Every module name the file imports, absolute (relative imports resolved), anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            names |= {f"{base}.{alias.name}" for alias in node.names}  # a submodule, or a name of `base`
    return names


def graph() -> dict[str, set[str]]:
    """builder module -> the builder modules it imports (the most specific module each import names)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for target in imported(path, name):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def test_no_import_circles() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    if circles:  # raised, not asserted: pytest would shorten the list in the message
        raise AssertionError(f"import circles: {circles}")


def test_the_runtime_imports_nothing_from_the_build_side() -> None:
    known = modules()
    for name, targets in graph().items():
        if name.startswith("builder.runtime"):
            outside = {t for t in targets if not t.startswith("builder.runtime") and t != "builder.errors"}
            heavy = {m for m in imported(known[name], name) if m.split(".")[0] in BUILD_PACKAGES}
            if outside or heavy:
                raise AssertionError(
                    f"{name} imports {sorted(outside)} and build-time packages {sorted(heavy)}"
                )


def test_the_check_sees_a_circle_and_a_build_import(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The checks above fail on what they guard against: a copy of the package with one more import."""
    import shutil

    copy = tmp_path / "builder"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    engine = copy / "runtime" / "engine.py"
    engine.write_text(
        engine.read_text() + "\n\ndef _f():\n    import onnx\n    from builder.make import driver\n"
    )
    errors = copy / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _g():\n    from builder.runtime import loader\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", copy)
    try:
        test_the_runtime_imports_nothing_from_the_build_side()
    except AssertionError as e:
        assert "builder.make.driver" in str(e) and "onnx" in str(e)
    else:
        raise AssertionError("a runtime import of the build side went unnoticed")
    try:
        test_no_import_circles()
    except AssertionError as e:
        assert "builder.errors" in str(e)
    else:
        raise AssertionError("an import circle went unnoticed")
