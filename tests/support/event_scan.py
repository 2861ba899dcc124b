"""Which event types the services' code can publish, found by reading it (AST), not running it.

Every event is built by `new_event(service=…, entity=…, verb=…)`. The arguments are literals,
module constants, or names whose values can be followed: a local assignment (`verb = "a" if
… else "b"`), a module-level dict (`VERBS[action]` → its values), or a parameter, resolved
at every call site of the function (`resource_event("offered", …)`), recursively. What
cannot be followed (an attribute such as `review.outcome`) must be listed in a table of
known dynamic values, with the reason they are exhaustive.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPO / "services"


@dataclass(frozen=True)
class Produced:
    """One event type a `new_event` call can build."""

    type_name: str
    where: str  # path:line of the new_event call


@dataclass
class Module:
    name: str
    rel: str  # path from the repository root, for messages and the dynamic table
    tree: ast.Module
    constants: dict[str, object] = field(default_factory=dict)
    dicts: dict[str, list[object]] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    # local alias → (module, attribute or None for the module itself)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)


class Unresolved(Exception):
    def __init__(self, where: str, function: str, expr: str) -> None:
        super().__init__(f"{where}: cannot follow `{expr}` in {function}()")
        self.key = (where.split(":")[0], function, expr)


def load_modules(root: Path = SERVICES_DIR, base: Path = REPO) -> dict[str, Module]:
    """Every module under `root` (named as imported from `base`), migrations excepted."""
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(base)
        mod = Module(".".join(rel.with_suffix("").parts), str(rel), tree)
        for node in tree.body:
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            for target in targets:
                if not isinstance(target, ast.Name) or value is None:
                    continue
                if isinstance(value, ast.Constant):
                    mod.constants[target.id] = value.value
                elif isinstance(value, ast.Dict):
                    mod.dicts[target.id] = [
                        v.value for v in value.values if isinstance(v, ast.Constant)
                    ]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                mod.functions[node.name] = node
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    mod.imports[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    mod.imports[alias.asname or alias.name] = (alias.name, None)
        # Imports inside functions (services import use cases lazily to avoid cycles).
        for fn in mod.functions.values():
            for inner in ast.walk(fn):
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    for alias in inner.names:
                        mod.imports.setdefault(
                            alias.asname or alias.name, (inner.module, alias.name)
                        )
        modules[mod.name] = mod
    return modules


class Scanner:
    def __init__(
        self,
        modules: Mapping[str, Module],
        dynamic: Mapping[tuple[str, str, str], frozenset[str]],
    ) -> None:
        self.modules = modules
        self.dynamic = dynamic
        self.used_dynamic: set[tuple[str, str, str]] = set()

    # -- call graph ---------------------------------------------------------------------

    def _target(self, mod: Module, call: ast.Call) -> tuple[str, str] | None:
        """(module, function) a call refers to, when it is one of ours."""
        func = call.func
        if isinstance(func, ast.Name):
            if func.id in mod.functions:
                return (mod.name, func.id)
            imported = mod.imports.get(func.id)
            if imported and imported[1] is not None:
                return (imported[0], imported[1])
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            imported = mod.imports.get(func.value.id)
            if imported:
                base, attr = imported
                module = base if attr is None else f"{base}.{attr}"
                return (module, func.attr)
        return None

    def call_sites(
        self, module: str, function: str
    ) -> Iterator[tuple[Module, ast.FunctionDef | ast.AsyncFunctionDef, ast.Call]]:
        for mod in self.modules.values():
            for fn in mod.functions.values():
                for node in ast.walk(fn):
                    if isinstance(node, ast.Call) and self._target(mod, node) == (
                        module,
                        function,
                    ):
                        yield mod, fn, node

    # -- values -------------------------------------------------------------------------

    def values(
        self,
        expr: ast.expr,
        mod: Module,
        fn: ast.FunctionDef | ast.AsyncFunctionDef,
        depth: int = 0,
    ) -> set[str]:
        where = f"{mod.rel}:{expr.lineno}"
        if depth > 8:
            raise Unresolved(where, fn.name, ast.unparse(expr))
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return {expr.value}
        if isinstance(expr, ast.IfExp):
            return self.values(expr.body, mod, fn, depth) | self.values(expr.orelse, mod, fn, depth)
        if (
            isinstance(expr, ast.Subscript)
            and isinstance(expr.value, ast.Name)
            and expr.value.id in mod.dicts
        ):
            return {str(v) for v in mod.dicts[expr.value.id]}
        if isinstance(expr, ast.Name):
            assigned = [
                node.value
                for node in ast.walk(fn)
                if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == expr.id for t in node.targets)
            ]
            if assigned:
                out: set[str] = set()
                for value in assigned:
                    out |= self.values(value, mod, fn, depth + 1)
                return out
            if expr.id in _params(fn):
                return self._from_callers(expr.id, mod, fn, depth)
            if expr.id in mod.constants:
                return {str(mod.constants[expr.id])}
        key = (mod.rel, fn.name, ast.unparse(expr))
        if key in self.dynamic:
            self.used_dynamic.add(key)
            return set(self.dynamic[key])
        raise Unresolved(where, fn.name, ast.unparse(expr))

    def _from_callers(
        self, param: str, mod: Module, fn: ast.FunctionDef | ast.AsyncFunctionDef, depth: int
    ) -> set[str]:
        args = fn.args
        positional = [a.arg for a in (*args.posonlyargs, *args.args)]
        defaults = dict(
            zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
        )
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            if d is not None:
                defaults[a.arg] = d
        out: set[str] = set()
        sites = list(self.call_sites(mod.name, fn.name))
        if not sites:
            raise Unresolved(f"{mod.rel}:{fn.lineno}", fn.name, f"{param} (no caller)")
        for caller_mod, caller_fn, call in sites:
            arg: ast.expr | None = None
            for kw in call.keywords:
                if kw.arg == param:
                    arg = kw.value
            if arg is None and param in positional:
                index = positional.index(param)
                if index < len(call.args):
                    arg = call.args[index]
            if arg is None:
                arg = defaults.get(param)
            if arg is None:
                raise Unresolved(f"{caller_mod.rel}:{call.lineno}", caller_fn.name, param)
            out |= self.values(arg, caller_mod, caller_fn, depth + 1)
        return out

    # -- the scan -----------------------------------------------------------------------

    def produced(self) -> list[Produced]:
        found: list[Produced] = []
        for mod in self.modules.values():
            for fn in _all_functions(mod.tree):
                for node in ast.walk(fn):
                    if not (isinstance(node, ast.Call) and _called(node) == "new_event"):
                        continue
                    kwargs = {kw.arg: kw.value for kw in node.keywords}
                    parts = []
                    for name in ("service", "entity", "verb"):
                        if name not in kwargs:
                            raise Unresolved(f"{mod.rel}:{node.lineno}", fn.name, name)
                        parts.append(sorted(self.values(kwargs[name], mod, fn)))
                    versions = {"1"}
                    if "version" in kwargs:
                        version = kwargs["version"]
                        if not (
                            isinstance(version, ast.Constant) and isinstance(version.value, int)
                        ):
                            raise Unresolved(f"{mod.rel}:{node.lineno}", fn.name, "version")
                        versions = {str(version.value)}
                    where = f"{mod.rel}:{node.lineno}"
                    for service in parts[0]:
                        for entity in parts[1]:
                            for verb in parts[2]:
                                for v in versions:
                                    found.append(
                                        Produced(f"sa.{service}.{entity}.{verb}.v{v}", where)
                                    )
        return found


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    a = fn.args
    return {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}


def _all_functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def direct_event_constructions(modules: Mapping[str, Module]) -> list[str]:
    """`Event(type=…)` built by hand in service code (it must go through `new_event`)."""
    found = []
    for mod in modules.values():
        for node in ast.walk(mod.tree):
            if (
                isinstance(node, ast.Call)
                and _called(node) == "Event"
                and any(kw.arg == "type" for kw in node.keywords)
            ):
                found.append(f"{mod.rel}:{node.lineno}")
    return found
