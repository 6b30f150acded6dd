"""The import rule of DESIGN.md §1: imports only point down the chain, and no module cycle.

Every ``import`` statement of the package is read from the source (lazy imports inside functions
and ``TYPE_CHECKING`` blocks included), so the rule holds for code that runs only sometimes too.
Also: ``import hypbias`` and ``hypbias --help`` stay light.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hypbias"

LAYERS = [
    {"_version", "errors", "_validation", "io", "_registry"},
    {"hierarchy"},
    {"labelspace"},
    {"metrics", "losses", "data", "models", "rundir"},
    {"analysis"},
    {"train"},
    {"report"},
    {"experiment"},
    {"cli", "integrations"},
    {"__main__"},
]
"""The chain, bottom first. Within one layer, a package may import only itself."""

TIER = {name: level for level, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports (``from a import b`` counts a.b when a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t == "hypbias" or t.startswith("hypbias."))
    return found


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported(path, name, set(mods)) for name, path in mods.items()}


def test_every_top_level_module_has_a_layer():
    tops = {top(m) for m in modules()} - {""}
    assert tops <= set(TIER), f"modules missing from LAYERS: {sorted(tops - set(TIER))}"


def test_imports_point_down_the_chain(graph):
    bad = []
    for source, targets in graph.items():
        for target in targets:
            src, dst = top(source), top(target)
            if not src or src == dst:
                continue
            if not dst:
                bad.append(f"{source} imports the top-level package hypbias")
            elif TIER[dst] >= TIER[src]:
                bad.append(f"{source} (layer {TIER[src]}) imports {target} (layer {TIER[dst]})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(sorted(bad))


def test_no_import_cycle_between_modules(graph):
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_hypbias_is_light():
    loaded = _loaded_after("import hypbias")
    heavy = {m for m in loaded if m in {"torch", "tqdm", "pandas", "matplotlib"}
             or m.startswith(("hypbias.train.loop", "hypbias.data", "hypbias.models", "hypbias.report"))}
    assert not heavy


def test_the_tracker_loads_without_the_loop_data_models_or_report():
    loaded = _loaded_after("import hypbias as hb\nhb.Tracker")
    assert "hypbias.train.tracker" in loaded
    # torch.hub imports tqdm itself; hypbias's progress bars come from tqdm.auto
    assert not {m for m in loaded if m == "tqdm.auto" or m.startswith(
        ("hypbias.train.loop", "hypbias.data", "hypbias.models", "hypbias.report"))}


def test_help_and_version_do_not_import_torch():
    for args in ("--help", "--version"):
        loaded = _loaded_after("import sys\nfrom hypbias.cli import main\n"
                               f"try:\n    main([{args!r}])\nexcept SystemExit:\n    pass")
        assert "torch" not in loaded, args
