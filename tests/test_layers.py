"""The package's layers: imports only go down, and no module imports itself
back through others.

Every import counts, the ones inside functions and under TYPE_CHECKING too:
a lazy import is still a dependency, only a cheaper one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stui_repl"

# Top to bottom. A module may import its own layer and the layers below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli", "__main__"),
    ("modes",),
    ("commands",),
    ("render",),
    ("session",),
    ("image",),
    ("client",),
    ("config", "settings", "toml_text", "locks", "trust", "paths", "errors", "__init__"),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def is_module(name: str) -> bool:
    return is_package(name) or (PACKAGE.parent / (name.replace(".", "/") + ".py")).exists()


def imports_of(path: Path) -> set[str]:
    """The stui_repl modules `path` imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("stui_repl"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("stui_repl"):
                continue
            for alias in node.names:
                if is_module(f"{target}.{alias.name}"):
                    found.add(f"{target}.{alias.name}")
                else:
                    found.add(target)
    found.discard(name)
    return found


GRAPH = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_belongs_to_a_layer() -> None:
    assert {layer_of(module) for module in GRAPH} <= set(RANK), "a new top-level module needs a place in LAYERS"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_only_go_down(module: str) -> None:
    upward = [target for target in GRAPH[module] if RANK[layer_of(target)] < RANK[layer_of(module)]]
    assert not upward, f"{module} imports a layer above its own: {upward}"


def test_the_base_modules_import_only_each_other() -> None:
    base = set(LAYERS[-1])
    for module, targets in GRAPH.items():
        if layer_of(module) in base:
            assert {layer_of(t) for t in targets} <= base, module


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components: any with two modules or more is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_the_registry_imports_no_command() -> None:
    assert not {t for t in GRAPH["stui_repl.commands.registry"] if t.startswith("stui_repl.commands.")}


def test_the_checker_sees_imports_inside_functions() -> None:
    """The controller imports the session store lazily: the graph must still hold it."""
    assert "stui_repl.session.store" in GRAPH["stui_repl.session.controller"]
    assert "stui_repl.image.attachment" in GRAPH["stui_repl.session.controller"]
