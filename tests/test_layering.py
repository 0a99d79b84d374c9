"""The house's import rules, read from the source: facecmp/ imports nothing from serve/, eval/
or training/; training/ may import eval/ (its metrics and dataset adapters), and no other of
the three imports another; `facecmp serve` reaches the service
only through the `facecmp.commands` entry point that pyproject.toml declares; and no source,
script or notebook uses a name it never defined or imports what it never uses (pyflakes' rules,
run by ruff: a script no test runs broke on an undefined name once)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("facecmp", "serve", "eval", "training")


def imported_packages(path: Path) -> set[str]:
    """Top-level package names of every import in ``path`` (relative imports excluded)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value).split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_the_library(package):
    allowed = {"facecmp", package} | ({"eval"} if package == "training" else set())
    offenders = {str(path.relative_to(REPO)): sorted((imported_packages(path) & set(PACKAGES)) - allowed)
                 for path in sorted((REPO / package).rglob("*.py"))}
    assert {path: bad for path, bad in offenders.items() if bad} == {}


def test_no_source_uses_an_undefined_name_or_imports_in_vain(tmp_path):
    # ruff's F rules (pyflakes) over every Python file and notebook of the repository.
    found = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F", "--no-cache",
                            "--output-format", "concise", str(REPO)],
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stdout + found.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("import json\nprint(Undefined)\n")
    caught = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F", "--no-cache",
                             "--output-format", "concise", str(broken)], capture_output=True, text=True, timeout=120)
    assert "F401" in caught.stdout and "F821" in caught.stdout   # the check itself sees both


def test_the_checker_sees_each_kind_of_import(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import serve.app\nfrom eval import run\nimport importlib\nimportlib.import_module('training.x')\n")
    assert {"serve", "eval", "training"} <= imported_packages(source)


def _facecmp_with_entry_points(tmp_path: Path, entry_points: dict[str, str], *args: str):
    """Run ``python -m facecmp.cli ARGS`` with a distribution that declares ``entry_points``
    in the ``facecmp.commands`` group on its path (as an installed package would)."""
    dist = tmp_path / "plugin-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin\nVersion: 0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[facecmp.commands]\n{lines}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "facecmp.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_facecmp_serve_comes_from_the_entry_point_pyproject_declares(tmp_path):
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["facecmp.commands"]
    assert declared == {"serve": "serve.cli:register [serve]"}
    done = _facecmp_with_entry_points(tmp_path, declared, "serve", "--help")
    assert done.returncode == 0, done.stderr
    assert "--host" in done.stdout and "--port" in done.stdout


def test_a_command_whose_extra_is_missing_names_the_extra(tmp_path):
    done = _facecmp_with_entry_points(tmp_path, {"missing": "no_such_package.cli:register [serve]"}, "missing")
    assert done.returncode == 2
    assert "pip install 'facecmp[serve]'" in done.stderr and "no_such_package" in done.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_generic_package_names_resolve_to_this_project(package):
    """serve, eval and training are generic top-level names (pyproject.toml says why that is
    acceptable): a same-named package of another distribution would shadow them here."""
    module = __import__(package)
    assert Path(module.__file__).resolve().parent == REPO / package


def test_a_missing_extra_is_named():
    from facecmp.extras import require

    assert require("json", "core").dumps([]) == "[]"
    with pytest.raises(ImportError, match=r"pip install 'facecmp\[eval\]'"):
        require("no_such_plotting_library", "eval")


def test_only_the_settings_modules_read_the_environment():
    readers = set()
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                        getattr(node.value, "id", None) == "os" and not isinstance(node.ctx, ast.Store):
                    readers.add(str(path.relative_to(REPO)))
    # settings.py: XDG_CACHE_HOME for the default cache; eval/cli.py only sets tqdm's refresh
    # interval; serve/testing.py hands the whole environment to the server it starts, and
    # serve/cluster.py the FACECMP_* variables to the replicas Ray starts on other nodes.
    assert readers == {"facecmp/settings.py", "eval/cli.py", "serve/testing.py", "serve/cluster.py"}


def library_imports() -> dict[str, set[str]]:
    """Each module of facecmp/ -> the facecmp modules importing it runs, lazy imports inside
    functions included: the named module and the packages it sits in (their ``__init__``), but
    neither the top package (``facecmp/__init__`` re-exports the pipeline) nor the importer's own
    packages, which are already being imported when it runs."""
    modules = {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
               for path in (REPO / "facecmp").rglob("*.py")}

    def runs(name: str) -> set[str]:
        parts = name.split(".")
        return {".".join(parts[:k]) for k in range(2, len(parts) + 1)} & set(modules)

    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(*(runs(alias.name) for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("facecmp"):
                edges.update(runs(node.module), *(runs(f"{node.module}.{alias.name}") for alias in node.names))
        graph[name] = {e for e in edges if e != name and not name.startswith(e + ".")}
    return graph


def test_the_library_has_no_import_circle():
    """A circle hidden in lazy imports (display -> liveness -> display) is a circle still."""
    graph, state, circles = library_imports(), {}, []

    def visit(stack: list[str]) -> None:  # depth first; a module still open on the stack closes a circle
        state[stack[-1]] = "open"
        for target in sorted(graph[stack[-1]]):
            if state.get(target) == "open":
                circles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(stack + [target])
        state[stack[-1]] = "done"

    for module in sorted(graph):
        if module not in state:
            visit([module])
    assert circles == []
    assert "facecmp.liveness.checks" in graph["facecmp.liveness.checker"]  # the reader sees package modules
