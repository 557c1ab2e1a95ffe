"""The package's import graph: layers by the method's stages, no cycle, torch only in the model."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import skdanet

PACKAGE = Path(skdanet.__file__).parent

# Lower layers never import higher ones (equal ranks may import each other
# only if no cycle forms). The estimators and the CLI sit on top.
LAYERS = {
    "utils": 0,
    "metrics": 0,
    "datasets": 0,
    "graph": 1,
    "cluster": 2,
    "model": 3,
    "_embedder": 4,
    "_clustering": 5,
    "model_selection": 6,
    "__init__": 7,
    "__main__": 8,
    "_version": 0,
}


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(name):
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def _imports(path):
    """Modules of skdanet imported by the file at ``path`` (anywhere in it, functions included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("skdanet")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("skdanet"):
                continue
            # "from . import x" / "from .pkg import mod": the submodule itself.
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                          or _is_package(sub) else target)
    found.discard(name)
    return found


def _graph():
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _layer(module):
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def test_every_module_has_a_layer():
    for module in _graph():
        _layer(module)  # KeyError names a module that belongs to no layer


def test_no_module_imports_a_higher_layer():
    upward = [(a, b) for a, targets in _graph().items() for b in targets
              if _layer(b) > _layer(a)]
    assert upward == []


def test_import_graph_has_no_cycle():
    graph = _graph()
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            # A package's __init__ re-exports its modules: "pkg -> pkg.mod" is
            # the package's own layout, not a cycle through it.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join(path + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_the_checker_sees_an_upward_import(tmp_path):
    # The checker itself: a lower layer importing the estimators is found.
    fake = PACKAGE / "graph" / "_upward_probe.py"
    fake.write_text("from .._embedder import DANetEmbedder\n")
    try:
        assert ("skdanet._embedder" in _imports(fake))
        with pytest.raises(AssertionError):
            test_no_module_imports_a_higher_layer()
    finally:
        fake.unlink()


@pytest.mark.parametrize("module", ["skdanet.graph", "skdanet.cluster", "skdanet.metrics",
                                    "skdanet.datasets"])
def test_numpy_stages_import_without_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
