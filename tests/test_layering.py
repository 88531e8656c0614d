"""The layering of the code base, as DESIGN.md draws it, checked on the source.

Every ``import`` is read from the syntax tree, wherever it is written (module
level or inside a function: a deferred import still couples the modules), so
a rule cannot be dodged by importing late.  Imports under ``if TYPE_CHECKING:``
are annotations only: they count for the layer rules but not for cycles.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("t2m", "api", "pipeline", "db", "scheduler", "recommender")
# The composition roots: the one part of the kernel that imports every layer.
CLI = "t2m.cli"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    typing_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (None: not the project's)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    typing_nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for inner in node.body:
                typing_nodes.update(id(n) for n in ast.walk(inner))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports the module pkg.mod.
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                yield Edge(module, target, node.lineno, id(node) in typing_nodes)


EDGES = [edge for module, path in MODULES.items() for edge in _imports(module, path)]


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(
    sources: tuple[str, ...], forbidden: tuple[str, ...], *, exempt: str = ""
) -> list[str]:
    return [
        f"{e.source}:{e.line} imports {e.target}"
        for e in EDGES
        if any(_in(e.source, s) for s in sources)
        and not (exempt and _in(e.source, exempt))
        and any(_in(e.target, f) for f in forbidden)
    ]


def test_the_walk_sees_the_code_base() -> None:
    # A broken walk would pass every rule below.
    assert "api.app" in MODULES and "pipeline.maintenance.registry" in MODULES
    assert any(e.source == "api.app" and _in(e.target, "t2m") for e in EDGES)


def test_kernel_imports_no_other_layer() -> None:
    others = ("api", "pipeline", "db", "scheduler", "recommender")
    assert _violations(("t2m",), others, exempt=CLI) == []


def test_db_imports_only_the_kernel() -> None:
    assert _violations(("db",), ("api", "pipeline", "scheduler", "recommender")) == []


def test_stages_and_maintenance_import_no_api_and_no_workers() -> None:
    sources = ("pipeline.stages", "pipeline.maintenance")
    assert _violations(sources, ("api", "pipeline.workers")) == []


def test_api_imports_no_workers() -> None:
    assert _violations(("api",), ("pipeline.workers",)) == []


def test_workers_import_no_api() -> None:
    # What a worker shares with the API (the cached reads it warms) lives below both.
    assert _violations(("pipeline.workers",), ("api",)) == []


def test_infrastructure_keys_import_no_feature() -> None:
    # api.keys is imported by every feature: it must import none of them back.
    assert [e.target for e in EDGES if e.source == "api.keys" and _in(e.target, "api")] == []


def _cycles() -> list[list[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for edge in EDGES:
        if not edge.typing_only:
            graph[edge.source].add(edge.target)
    # Tarjan's strongly connected components: any component of two or more
    # modules is an import cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycles() -> None:
    assert _cycles() == []


# Loaded only where models are trained or media is made, never by the web process.
HEAVY = ("torch", "PIL", "av", "sentence_transformers", "transformers")
TRAINING = (
    "recommender.agent",
    "recommender.checkpoint",
    "recommender.embeddings",
    "recommender.simulate",
    "recommender.synthetic",
    "pipeline.stages.rl_update",
    "pipeline.workers",
)


def test_the_web_process_loads_no_media_or_training_code() -> None:
    program = "import json, sys\nimport api.app\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "api.app" in loaded
    assert [m for m in loaded if any(_in(m, name) for name in (*HEAVY, *TRAINING))] == []
