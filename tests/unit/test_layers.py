"""The import graph keeps its layers and has no circles (docs/architecture.md).

Layers, bottom to top: the engine (app/engine: wecom, inbox, outbox, bot, db, config …), the
domains (every other package under app/), the roof of the domains (app/flows.py, every table
in app/models.py, the migrations in app/migrate.py), the behaviours (handlers/), the faces
(app/faces: web, console, CLI, demo, simulator). A module imports only its own layer or lower
ones, and no module reaches itself through its imports. Imports inside functions and under
TYPE_CHECKING count too: a circle hidden there is still a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.conftest import REPO

ENGINE, DOMAIN, ROOF, HANDLERS, FACES = range(5)
NAMES = ("engine", "domain", "roof", "handlers", "faces")
ROOF_MODULES = {"app.flows", "app.models", "app.migrate"}


def layer(module: str) -> int:
    if module.startswith("handlers"):
        return HANDLERS
    if module.startswith("app.faces"):
        return FACES
    if module.startswith("app.engine") or module == "app":
        return ENGINE
    return ROOF if module in ROOF_MODULES else DOMAIN


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in [*root.glob("app/**/*.py"), *root.glob("handlers/**/*.py")]:
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(known: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module → the modules of ours it imports (a package's module when a name is one)."""
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in known else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in known and t != name}
    return graph


def upward(graph: Mapping[str, set[str]]) -> list[str]:
    return sorted(f"{NAMES[layer(m)]} {m} imports {NAMES[layer(t)]} {t}"
                  for m, targets in graph.items() for t in targets if layer(t) > layer(m))


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


GRAPH = imports(modules(REPO))


def test_the_layers_only_import_downward() -> None:
    assert upward(GRAPH) == []


def test_the_engine_imports_nothing_but_the_engine() -> None:
    assert sorted(f"{m} imports {t}" for m, targets in GRAPH.items() if layer(m) == ENGINE
                  for t in targets if layer(t) != ENGINE) == []


def test_no_module_reaches_itself_through_its_imports() -> None:
    assert circles(GRAPH) == []


def test_the_checks_catch_an_upward_import_and_a_circle() -> None:
    """The same checks on a small graph that breaks both rules."""
    graph = {"app.engine.outbox.sender": {"app.funnel.delivery"},
             "app.funnel.delivery": {"app.funnel.service"},
             "app.funnel.service": {"app.funnel.steps"},
             "app.funnel.steps": {"app.funnel.delivery"},
             "handlers.welcome": {"app.faces.web.main"}, "app.faces.web.main": set()}
    assert upward(graph) == [
        "engine app.engine.outbox.sender imports domain app.funnel.delivery",
        "handlers handlers.welcome imports faces app.faces.web.main"]
    assert circles(graph) == [["app.funnel.delivery", "app.funnel.service",
                               "app.funnel.steps"]]


def test_every_module_is_read() -> None:
    assert {"app.engine.bot.router", "app.funnel.service", "app.flows", "handlers.welcome",
            "app.faces.web.main"} <= set(GRAPH)
    assert "app.engine.bot.context" in GRAPH["app.engine.bot.router"]
