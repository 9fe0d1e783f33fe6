"""No import cycle among the modules of `dreamer` and `worlds`, read from their source (ast).

An edge A -> B is an `import B` / `from B import ...` / `from . import B` in A that names a
module of `dreamer` or `worlds` (`from pkg import name` counts `pkg.name` where that is a module,
else `pkg`), at module level or inside a function, class or `if TYPE_CHECKING:` block alike:
a function-level import is not a way to hide a cycle here, so every import statement counts.
A package's `__init__` is a module like any other (`import worlds.x` runs `worlds/__init__.py`
first, but that implicit edge is not counted: the test is about the modules' own imports).
The registry's lazy factories ("module:callable" strings resolved with importlib) are not
import statements, and are not counted either: they point from the registry into the world
modules, which import `worlds.base` and `worlds.errors`, never the registry.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("dreamer", "worlds")


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """{module: modules of `dreamer`/`worlds` it imports} over every import statement."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules
                           else source for alias in node.names]
            for target in targets:
                while target and target not in modules:  # `import worlds.x.y` of a module x.y
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def importers_of(library: str) -> set[str]:
    """Modules of `dreamer`/`worlds` with an import statement (anywhere) naming `library` or one
    of its submodules."""
    found = set()
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                sources = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                sources = [node.module or ""]
            else:
                continue
            if any(source.split(".")[0] == library for source in sources):
                found.add(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_is_read_from_source():
    graph = import_graph()
    assert "dreamer.train" in graph and "worlds.registry" in graph
    assert "worlds.errors" in graph["worlds.registry"]
    assert "dreamer.collect" in graph["dreamer.train"]


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_search_is_the_only_module_importing_mctx():
    """mctx stays behind `dreamer.search`'s seam (`make_search`; `plain_mctx_action` for the
    bench's raw baseline): no other module imports it."""
    assert importers_of("mctx") == {"dreamer.search"}
    # the reader sees both forms: `import optax` (learner) and `from flax import struct` (search)
    assert "dreamer.learner" in importers_of("optax") and "dreamer.search" in importers_of("flax")


def test_the_world_kind_is_branched_on_only_where_programs_and_collectors_are_built():
    """A world's kind (`is_jax`) picks the collector implementation (`dreamer.collect`) and the
    programs built for it (`dreamer.programs`); no other module of `dreamer` branches on it (the
    CLI asks the registry, `worlds.kind`; the agent asks its programs)."""
    users = {name for name, path in _modules().items()
             if name.startswith("dreamer") and "is_jax" in path.read_text()}
    assert users == {"dreamer.collect", "dreamer.programs"}
