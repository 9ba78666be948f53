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
DOMAINS = {"archive", "funnel", "verify", "routing", "groups", "calendar", "kf", "keywords",
           "members", "directory", "operators", "koc"}


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
    """Module → the modules of ours it imports (a package's module when a name is one);
    relative imports are resolved against the importing module's package."""
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = _absolute(package, node.module, node.level)
                for alias in node.names:
                    full = f"{base}.{alias.name}" if base else alias.name
                    targets.add(full if full in known else base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in known and t != name}
    return graph


def _absolute(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = ".".join(parts[:len(parts) - (level - 1)])
    return f"{base}.{module}" if module else base


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


def test_every_module_sits_in_a_declared_layer() -> None:
    """A new top-level package or module under app/ is a decision: declare its layer here."""
    placed = {"engine", "faces", "flows", "models", "migrate", *DOMAINS}
    assert sorted({m.split(".")[1] for m in GRAPH if m.startswith("app.")} - placed) == []


def test_imports_are_read_in_every_form(tmp_path: Path) -> None:
    """Relative imports, `import a.b`, imports inside functions and under TYPE_CHECKING."""
    files = {"app/__init__.py": "", "app/engine/__init__.py": "",
             "app/engine/a.py": "from ..funnel import service\n",
             "app/engine/b.py": "def f():\n    import app.funnel.steps\n",
             "app/engine/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                "    from app.funnel.service import record\n",
             "app/funnel/__init__.py": "", "app/funnel/service.py": "from . import steps\n",
             "app/funnel/steps.py": ""}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = imports(modules(tmp_path))
    assert graph["app.engine.a"] == {"app.funnel.service"}
    assert graph["app.engine.b"] == {"app.funnel.steps"}
    assert graph["app.engine.c"] == {"app.funnel.service"}
    assert graph["app.funnel.service"] == {"app.funnel.steps"}
    assert len(upward(graph)) == 3


def test_every_module_is_read() -> None:
    assert {"app.engine.bot.router", "app.funnel.service", "app.flows", "handlers.welcome",
            "app.faces.web.main"} <= set(GRAPH)
    assert "app.engine.bot.context" in GRAPH["app.engine.bot.router"]
