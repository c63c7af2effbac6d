"""The package's shape, read from its source with `ast`: imports point one way, and every setting is read.

- No import cycle inside `auralis_ray`, between modules or between its subpackages (`config` imports
  `stream.protocol`, so no module of `stream` may import `config`).
- The pure core (`stream/`, `music/`, `synth/`) reaches neither Ray nor the configuration tree nor the
  Ray and Serve adapters, directly or through another module of the package.
- Every field of `PerformanceConfig` is read, by attribute access, somewhere in the running code.
"""

from __future__ import annotations

import ast
import types
import typing
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

from auralis_ray.config import PerformanceConfig

PACKAGE = "auralis_ray"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
PURE_CORE = ("stream", "music", "synth")
# what the pure core must not reach: Ray itself, the configuration tree, the Ray and Serve adapters
FORBIDDEN_FOR_CORE = ("ray", f"{PACKAGE}.config", f"{PACKAGE}.actors", f"{PACKAGE}.serve")
# the development tools run beside the system, not in it: a setting only they read is not real
NOT_RUNNING_CODE = (f"{PACKAGE}.config", f"{PACKAGE}.tools")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=1)
def sources() -> dict[str, tuple[Path, ast.Module]]:
    """Every module of the package: name -> (path, syntax tree)."""
    return {module_name(path): (path, ast.parse(path.read_text(), str(path)))
            for path in sorted(ROOT.rglob("*.py"))}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imported_names(name: str) -> set[str]:
    """Absolute names of everything module `name` imports, anywhere in it (lazy imports included)."""
    path, tree = sources()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            # `from package import module` imports that module
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in sources())
    return found


def internal_imports(name: str) -> set[str]:
    """The package's own modules that `name` imports (a name inside a module resolves to that module)."""
    modules = set()
    for imported in imported_names(name):
        while imported and imported not in sources():
            imported = imported.rpartition(".")[0]
        if imported and imported != name and within(imported, PACKAGE):
            modules.add(imported)
    return modules


def part_of(name: str) -> str:
    """The part of the package a module belongs to: `auralis_ray.stream` for `auralis_ray.stream.client`."""
    return ".".join(name.split(".")[:2])


def module_graph() -> dict[str, set[str]]:
    return {name: internal_imports(name) for name in sources()}


def part_graph() -> dict[str, set[str]]:
    """Imports between the package's parts (subpackages and top-level modules)."""
    graph: dict[str, set[str]] = {part_of(name): set() for name in sources()}
    for name, imports in module_graph().items():
        graph[part_of(name)].update(part_of(imported) for imported in imports if part_of(imported) != part_of(name))
    return graph


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of nodes (Tarjan) larger than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def reachable(name: str) -> set[str]:
    """The package's modules that importing `name` can load, `name` included."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(internal_imports(current))
    return seen


def test_the_import_graph_has_modules_and_edges():
    """The scan sees the package (a broken resolver would find no cycle in an empty graph)."""
    assert {f"{PACKAGE}.config", f"{PACKAGE}.stream.client", f"{PACKAGE}.serve.app"} <= set(sources())
    assert f"{PACKAGE}.stream.protocol" in internal_imports(f"{PACKAGE}.stream.client")  # `from . import protocol`
    assert f"{PACKAGE}.stream.adaptive" in internal_imports(f"{PACKAGE}.stream.client")  # `from .adaptive import`
    assert f"{PACKAGE}.config" in internal_imports(f"{PACKAGE}.serve.app")  # `from ..config import`


def test_cycles_are_found():
    assert cycles_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles_in({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    cycles = cycles_in(module_graph())
    assert not cycles, "modules that import each other (directly or around a loop): " + "; ".join(
        " <-> ".join(group) for group in cycles)


def test_no_import_cycle_between_the_packages_parts():
    cycles = cycles_in(part_graph())
    assert not cycles, "parts of the package that import each other: " + "; ".join(
        " <-> ".join(group) for group in cycles)


def test_the_pure_core_reaches_neither_ray_nor_the_configuration_nor_the_adapters():
    problems = []
    for name in sources():
        if not any(within(name, f"{PACKAGE}.{core}") for core in PURE_CORE):
            continue
        for module in sorted(reachable(name)):
            for imported in sorted(imported_names(module)):
                if any(within(imported, forbidden) for forbidden in FORBIDDEN_FOR_CORE):
                    via = "" if module == name else f" (through {module})"
                    problems.append(f"{name} imports {imported}{via}")
    assert not problems, "\n".join(problems)


def config_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted path, field name) of every field of `model`, nested sections and list items included."""
    fields = []
    for name, info in model.model_fields.items():
        fields.append((prefix + name, name))
        for nested in models_in(info.annotation):
            fields.extend(config_fields(nested, f"{prefix}{name}."))
    return fields


def models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (list, tuple, dict, typing.Union, types.UnionType):
        return [model for argument in typing.get_args(annotation) for model in models_in(argument)]
    return []


def attributes_read_by_running_code() -> set[str]:
    return {node.attr
            for name, (_, tree) in sources().items()
            if not any(within(name, outside) for outside in NOT_RUNNING_CODE)
            for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def unread_settings(model: type[BaseModel]) -> list[str]:
    read = attributes_read_by_running_code()
    return [path for path, name in config_fields(model) if name not in read]


def test_an_unread_setting_is_listed():
    class Section(BaseModel):
        replica_fetch_interval_sec: float = 1.0  # read by serve/hub.py
        a_setting_nothing_reads: int = 0

    class Tree(BaseModel):
        stations: list[Section] = []

    assert unread_settings(Tree) == ["stations.a_setting_nothing_reads"]


def test_every_setting_is_read_by_running_code():
    """A field no running code reads is a promise the system does not keep: wire it or remove it."""
    paths = [path for path, _ in config_fields(PerformanceConfig)]
    assert {"buffer.initial_tier", "server.stations.preset", "server.revision"} <= set(paths)
    unread = unread_settings(PerformanceConfig)
    assert not unread, "settings that no running code reads (by attribute access): " + ", ".join(unread)
