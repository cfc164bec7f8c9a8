"""The package's layering: imports flow downward only, no cycles, no private names across modules.

Every import between sftmix modules (at module level and inside functions) must go to the
same or a lower layer of ``LAYERS``. The README's "Architecture" section shows the same order.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "sftmix"

#: Lowest first. A module belongs to the first entry that is it or a package above it.
LAYERS = [
    ["sftmix.constants", "sftmix.recipe", "sftmix.errors", "sftmix.io", "sftmix.distributed", "sftmix.offline",
     "sftmix.convert"],
    ["sftmix.config"],
    ["sftmix.toy"],
    ["sftmix.data"],
    ["sftmix.models"],
    ["sftmix.loss"],
    ["sftmix.dynamics"],
    ["sftmix.train"],
    ["sftmix.analysis"],
    ["sftmix.viz"],
    ["sftmix.pipeline"],
    ["sftmix.cli"],
    ["sftmix"],  # the lazy public API on top
]


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_len:
                best, best_len = index, len(name)
    if best is None:
        raise KeyError(f"{module} is in no layer of LAYERS")
    return best


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool):
    """(target module, imported names, line) of every sftmix import in ``source``, at any depth."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "sftmix" or target.startswith("sftmix."):
                names = [a.name for a in node.names]
                # `from pkg import submodule` imports the submodule.
                yield target, names, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sftmix" or alias.name.startswith("sftmix."):
                    yield alias.name, [], node.lineno


def violations(modules: dict[str, tuple[str, bool]], known: set[str]) -> list[str]:
    """Layering and private-name problems of ``modules`` (name -> (source, is_package))."""
    problems = []
    for module, (source, is_package) in modules.items():
        for target, names, line in imports(source, module, is_package):
            targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in known] or [target]
            for t in targets:
                if t != module and not module.startswith(t + ".") and layer_of(t) > layer_of(module):
                    problems.append(f"{module}:{line} imports {t} from a higher layer")
            if module != "sftmix":
                for n in names:
                    if n.startswith("_") and not n.startswith("__") and f"{target}.{n}" not in known \
                            and target != module:
                        problems.append(f"{module}:{line} imports the private name {n} from {target}")
    return problems


def edges(modules: dict[str, tuple[str, bool]], known: set[str]) -> dict[str, set[str]]:
    graph = {m: set() for m in modules}
    for module, (source, is_package) in modules.items():
        for target, names, _ in imports(source, module, is_package):
            targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in known] or [target]
            graph[module].update(t for t in targets if t in modules and t != module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def package_modules():
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        out[module_name(path)] = (path.read_text(encoding="utf-8"), path.name == "__init__.py")
    return out


# ---------------------------------------------------------------------------- tests
def test_every_module_has_a_layer():
    for module in package_modules():
        layer_of(module)


def test_imports_flow_downward_and_use_no_private_names():
    modules = package_modules()
    # `if TYPE_CHECKING:` in sftmix/__init__ is the top layer importing downward: allowed.
    assert violations(modules, set(modules)) == []


def test_no_import_cycles():
    modules = package_modules()
    graph = edges({m: v for m, v in modules.items() if m != "sftmix"}, set(modules))
    assert cycles(graph) == []


def test_the_checker_flags_violations():
    known = {"sftmix.loss.ce", "sftmix.train.trainer", "sftmix.analysis.selection", "sftmix.viz.widgets"}
    upward = {"sftmix.loss.ce": ("def f():\n    from ..train.trainer import SFTMixTrainer\n", False),
              "sftmix.train.trainer": ("from ..loss.ce import linear_cross_entropy\n", False)}
    problems = violations(upward, known)
    assert problems == ["sftmix.loss.ce:2 imports sftmix.train.trainer from a higher layer"]
    assert cycles(edges(upward, known)) == [["sftmix.loss.ce", "sftmix.train.trainer"]]
    private = {"sftmix.viz.widgets": ("from ..analysis.selection import _cut\n", False)}
    assert violations(private, known) == ["sftmix.viz.widgets:1 imports the private name _cut from "
                                          "sftmix.analysis.selection"]
    with pytest.raises(KeyError):
        layer_of("numpy")
