"""The package's layers point one way: no import cycles, nothing imports ``nbnumba.cli``
from outside it, and no ``_private`` name is imported across modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nbnumba"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports() -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported module, names imported from it)] (lazy imports included)."""
    graph: dict[str, list[tuple[str, list[str]]]] = {}
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        is_package = path.name == "__init__.py"
        edges = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges += [(alias.name, []) for alias in node.names
                          if alias.name.startswith("nbnumba")]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, is_package, node.level, node.module)
                if not target.startswith("nbnumba"):
                    continue
                names = [a.name for a in node.names]
                # "from . import io": the submodule itself
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
                edges += [(s, []) for s in subs]
                rest = [n for n in names if f"{target}.{n}" not in modules]
                if rest or not subs:
                    edges.append((target, rest))
        graph[module] = edges
    return graph


def test_nothing_outside_cli_imports_cli():
    offenders = [(m, t) for m, edges in _imports().items() for t, _ in edges
                 if t.startswith("nbnumba.cli") and not m.startswith("nbnumba.cli")]
    assert offenders == []


def test_no_private_names_across_modules():
    offenders = [(m, t, n) for m, edges in _imports().items() for t, names in edges
                 for n in names if n.startswith("_") and t != m]
    assert offenders == []


def test_no_import_cycles():
    graph = {m: sorted({t for t, _ in edges if t != m}) for m, edges in _imports().items()}
    # a module's package __init__ is not a dependency worth a cycle: it only re-exports lazily
    graph = {m: [t for t in ts if t in graph and t != "nbnumba"] for m, ts in graph.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in graph.get(m, []):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert cycles == []


LAYERS = [  # lower index: may import higher ones, never the other way round
    {"nbnumba.cli"},
    {"nbnumba.distributed", "nbnumba.compare", "nbnumba.datasets.runner"},
    {"nbnumba.api", "nbnumba.datasets.stills"},
    {"nbnumba.simulate", "nbnumba.trace", "nbnumba.setup", "nbnumba.validate",
     "nbnumba.engines", "nbnumba.output", "nbnumba.kernels", "nbnumba.cargs",
     "nbnumba.formats", "nbnumba.readers"},
    {"nbnumba.models"},  # the experiment's models: below everything that renders or reads
]


def test_layers_point_one_way():
    def layer(module: str) -> int | None:
        for i, names in enumerate(LAYERS):
            if any(module == n or module.startswith(n + ".") for n in names):
                return i
        return None

    offenders = []
    for m, edges in _imports().items():
        lm = layer(m)
        for t, _ in edges:
            lt = layer(t)
            if lm is not None and lt is not None and lt < lm:
                offenders.append((m, t))
    assert offenders == []
