"""The import graph of ``helpers``: no cycles, and the data modules keep to their layers.

The graph is read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` counts, also those inside functions (a lazy import still ties two modules
together); only ``if TYPE_CHECKING:`` blocks are skipped, since they never run.
"""
from __future__ import annotations

import ast
from pathlib import Path

HELPERS = Path(__file__).resolve().parent.parent / "helpers"

# What each data module may import from helpers.data (the layers of issue 12). Modules not
# listed here are not constrained by this test.
DATA_LAYERS: dict[str, set[str]] = {
    "espeak": set(),
    "audio": set(),
    "download": set(),
    "subsets": set(),
    "photos": {"cache"},
    "folders": {"cache", "images"},
    "images": {"cache"},
    "augment": {"audio"},
    "speech": {"audio", "augment", "espeak", "cache"},
    "real": {"audio", "augment", "download", "cache"},
    "sources": {"audio", "images", "photos", "real", "speech"},  # the resolver: the only module that picks a source
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(HELPERS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """Every module of the helpers package: dotted name -> file."""
    return {_module_name(path): path for path in sorted(HELPERS.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree`` at any depth, except under ``if TYPE_CHECKING:``."""
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module a ``from`` import names, with relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")[: len(importer.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool,
             modules: set[str]) -> dict[str, str]:
    """Bound name -> helpers module for one import statement (modules outside helpers skipped)."""
    bound: dict[str, str] = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in modules:
                bound[alias.asname or alias.name] = alias.name
        return bound
    source = _absolute(node, importer, is_package)
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in modules:  # from helpers.data import speech
            bound[alias.asname or alias.name] = submodule
        elif source in modules:  # from helpers.data.audio import SAMPLE_RATE
            bound[f"{source}:{alias.name}"] = source
    return bound


def import_graph() -> dict[str, dict[str, str]]:
    """Module -> {bound name: imported helpers module}, for every module of helpers."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        bound: dict[str, str] = {}
        for node in _import_nodes(tree):
            bound.update(_targets(node, name, path.name == "__init__.py", set(modules)))
        graph[name] = bound
    return graph


def _edges() -> dict[str, set[str]]:
    return {module: set(bound.values()) - {module} for module, bound in import_graph().items()}


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, the first repeated at the end) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(_cycle_in(set(component), edges))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def _cycle_in(component: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A path that starts and ends at the same module, inside one strongly connected component."""
    path = [min(component)]
    while path.count(path[-1]) < 2:
        path.append(min(edges[path[-1]] & component))
    return path[path.index(path[-1]):]


def test_cycles_are_found_and_named() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(edges) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_helpers_package_has_no_import_cycles() -> None:
    cycles = find_cycles(_edges())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_data_modules_keep_to_their_layers() -> None:
    edges = _edges()
    for short, allowed in DATA_LAYERS.items():
        imported = {m.removeprefix("helpers.data.") for m in edges[f"helpers.data.{short}"]
                    if m.startswith("helpers.data.")}
        assert imported <= allowed, f"helpers.data.{short} imports {sorted(imported - allowed)}"


def test_espeak_stays_free_of_torch() -> None:
    """Synthesis workers import espeak only: without torch they start in a fraction of a second."""
    tree = ast.parse((HELPERS / "data" / "espeak.py").read_text())
    names = {alias.name.split(".")[0] for node in _import_nodes(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {(node.module or "").split(".")[0] for node in _import_nodes(tree) if isinstance(node, ast.ImportFrom)}
    assert not names & {"torch", "torchaudio", "torchvision", "helpers"}


def test_data_modules_use_no_private_names_of_other_helpers_modules() -> None:
    """``speech._lay_out`` from another module is a hidden dependency: shared code is public."""
    graph, offences = import_graph(), []
    for module, path in _modules().items():
        if not module.startswith("helpers.data"):
            continue
        bound = graph[module]
        tree = ast.parse(path.read_text())
        offences += [f"{module}: {key.split(':')[0]}.{key.split(':')[1]}" for key, target in bound.items()
                     if ":" in key and key.split(":")[1].startswith("_") and target != module]
        offences += [f"{module}: {node.value.id}.{node.attr}" for node in ast.walk(tree)
                     if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                     and node.value.id in bound and bound[node.value.id] != module
                     and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert not offences, offences
