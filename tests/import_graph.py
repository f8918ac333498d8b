"""The import graph of the project's own packages (``evosearch``, ``tasks``, ``primitives``), read
with ``ast`` from the source files: nothing is imported or run.

An arrow ``a -> b`` means module ``a`` imports module ``b`` somewhere (at the top or inside a
function; imports under ``if TYPE_CHECKING:`` do not run and do not count). ``from pkg import x``
points at ``pkg.x`` when that is a module, else at ``pkg`` (its ``__init__``). ``tests/test_layers.py``
checks the graph against the layer order of ``docs/design.md``; run this file for the figures:

    python tests/import_graph.py          # arrows, cycles, arrows up the layers
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("primitives", "evosearch", "tasks")

# The layers, lowest first: a module may import from its own layer's package and from lower layers,
# never from a higher one. A module belongs to the longest prefix that names it.
LAYERS = (
    ("primitives",),
    ("evosearch.lang",),
    ("evosearch.symbolic",),
    ("evosearch.optim",),
    ("tasks",),
    ("evosearch.search",),
    ("evosearch.tune",),
    ("evosearch", "evosearch.cli", "evosearch.demo"),   # the public face and the command line
)


@dataclass(frozen=True)
class Graph:
    modules: tuple[str, ...]
    arrows: frozenset[tuple[str, str]]          # (importer, imported), explicit imports
    top_level: frozenset[tuple[str, str]]       # the arrows that run when the importer is imported

    def cycles(self) -> list[list[str]]:
        """The import cycles: strongly connected components of more than one module (Tarjan)."""
        succ: dict[str, list[str]] = {m: [] for m in self.modules}
        for a, b in self.arrows:
            if a != b:
                succ[a].append(b)
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        out: list[list[str]] = []

        def visit(v: str) -> None:
            index[v] = low[v] = len(index)
            stack.append(v)
            on_stack.add(v)
            for w in succ[v]:
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    out.append(sorted(component))

        for m in self.modules:
            if m not in index:
                visit(m)
        return sorted(out)

    def loaded_by(self, module: str) -> set[str]:
        """Every module that ``import module`` runs: its top-level imports, transitively, with the
        packages above each imported module (Python runs a package's ``__init__`` first)."""
        seen: set[str] = set()
        todo = [module]
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            todo += [b for a, b in self.top_level if a == m]
            todo += [p for p in _parents(m) if p in self.modules]
        seen.discard(module)
        return seen


def layer_of(module: str) -> int | None:
    best, where = -1, None
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                if name == "evosearch" and module != "evosearch":
                    continue          # the face is the package's __init__ alone
                best, where = len(name), i
    return where


def upward(graph: Graph) -> list[tuple[str, str]]:
    """Arrows from a module to one in a higher layer."""
    return sorted((a, b) for a, b in graph.arrows
                  if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) > layer_of(a))


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module):
    """(node, at top level) for every import statement outside ``if TYPE_CHECKING:`` blocks."""
    def walk(node, top):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    yield from walk_one(sub, top)
                continue
            yield from walk_one(child, top)

    def walk_one(child, top):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, top
        inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from walk(child, inner)
    yield from walk(tree, True)


def build(root: Path = ROOT) -> Graph:
    files = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "programs" in path.relative_to(root).parts:     # program texts, not Python modules
                continue
            files[_module_name(path, root)] = path
    modules = set(files)
    arrows, top_level = set(), set()
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        for node, top in _imports(tree):
            for target in _targets(node, name, is_package, modules):
                if target != name:
                    arrows.add((name, target))
                    if top:
                        top_level.add((name, target))
    return Graph(tuple(sorted(modules)), frozenset(arrows), frozenset(top_level))


def _targets(node, importer: str, is_package: bool, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [_known(alias.name, modules) for alias in node.names if _known(alias.name, modules)]
    if node.level:
        package = importer if is_package else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        target = sub if sub in modules else _known(base, modules)
        if target:
            out.append(target)
    return out


def _known(name: str, modules: set[str]) -> str | None:
    """The first-party module ``name`` refers to (the longest known prefix), or None."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in modules:
            return candidate
    return None


def report(graph: Graph) -> str:
    cycles = graph.cycles()
    up = upward(graph)
    lines = [f"{len(graph.modules)} modules, {len(graph.arrows)} import arrows, "
             f"{len(up)} pointing up the layers, {len(cycles)} import cycles"]
    lines += [f"  up: {a} -> {b}" for a, b in up]
    lines += [f"  cycle: {' <-> '.join(c)}" for c in cycles]
    unplaced = [m for m in graph.modules if layer_of(m) is None]
    lines += [f"  in no layer: {m}" for m in unplaced]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(build(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT)))
