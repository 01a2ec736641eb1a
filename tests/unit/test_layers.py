"""The import fence: every module of ``askhint_assets`` sits on one layer and imports only its own layer or
lower ones (README, "How the code is laid out"); Dagster is imported by the Dagster layer and the CLI only,
DuckDB by the store only, and SQL is written in the store only. Read from the syntax tree, so imports inside
functions and ``TYPE_CHECKING`` blocks count too.

From the ground up: foundations → core → store → pipeline → orchestration → CLI. ``demo/`` is a plug-in: it
may import the layers it plugs into (up to the pipeline), and no module outside it names it; the plug-in
loader (:mod:`askhint_assets.plugins`) finds it by a string, through the registries.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "askhint_assets"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (layer, first parts of the module names under askhint_assets on it)
    ("foundations", ("errors", "hashing", "ids", "paths", "file_lock", "sharding", "user_files", "plugins", "refs")),
    ("core", ("video", "datasets", "prompts", "questions", "vlm", "evaluation", "settings", "settings_file")),
    ("store", ("store",)),
    ("pipeline", ("pipeline", "inference")),
    ("plug-in", ("demo",)),
    ("orchestration", ("orchestration", "definitions", "__init__")),
    ("cli", ("cli", "cli_band", "cli_lineage", "cli_ops", "cli_plan")),
)
EXTERNAL: dict[str, tuple[str, ...]] = {  # a library, and the layers that may import it
    "dagster": ("orchestration", "cli"),
    "dagster_celery": ("orchestration", "cli"),
    "duckdb": ("store",),
}
RANK = {part: (i, layer) for i, (layer, parts) in enumerate(LAYERS) for part in parts}
PLUGIN = "demo"


def module_name(path: Path) -> str:
    """``askhint_assets.x.y`` of a file under the package (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1 and parts != ["askhint_assets", "__init__"]:
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> tuple[int, str]:
    """``(rank, layer)`` of ``askhint_assets.<first>...``; the package itself is the composition root."""
    parts = module.split(".")
    first = "__init__" if len(parts) == 1 else parts[1]
    if first not in RANK:
        raise KeyError(f"{module}: on no layer; add it to LAYERS here and to the README's layer table")
    return RANK[first]


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PKG / rel).with_suffix(".py").is_file() or (PKG / rel / "__init__.py").is_file()


def imports_of(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``askhint_assets`` module ``path`` imports, anywhere in the file.

    ``from askhint_assets.x import y`` names ``askhint_assets.x.y`` where that is a module, else
    ``askhint_assets.x``; relative imports are resolved against the file's package.
    """
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out: list[tuple[int, str]] = []
    source = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "askhint_assets"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "askhint_assets":
                continue
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((node.lineno, full if _is_module(full) else base))
    return sorted(set(out))


def external_imports_of(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """``(line, library)`` of every import of a library in :data:`EXTERNAL`."""
    source = path.read_text() if source is None else source
    out = []
    for node in ast.walk(ast.parse(source, str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        out += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in EXTERNAL]
    return sorted(set(out))


def violations(files: list[Path], sources: dict[Path, str] | None = None) -> list[str]:
    """One line per import that points up a layer, or names the plug-in from outside it (``sources``: the
    text of a file instead of what is on disk)."""
    bad = []
    for path in files:
        me = module_name(path)
        rank, layer = layer_of(me)
        for line, target in imports_of(path, (sources or {}).get(path)):
            t_rank, t_layer = layer_of(target)
            where = f"{path.relative_to(ROOT)}:{line}"
            if t_layer == "plug-in" and layer != "plug-in":
                bad.append(f"{where}: {me} ({layer}) imports the plug-in {target}; reach it through a registry")
            elif t_rank > rank:
                bad.append(f"{where}: {me} ({layer}) imports {target} ({t_layer}), a higher layer")
        for line, lib in external_imports_of(path, (sources or {}).get(path)):
            if layer not in EXTERNAL[lib]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {me} ({layer}) imports {lib}, "
                           f"which only {' and '.join(EXTERNAL[lib])} may")
    return bad


SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|WITH|DROP|ALTER)\b")
STORE_CALLS = {"upsert", "replace_where", "query", "scalar", "execute", "executemany", "sql"}
"""Calls that take SQL or a table name (``Store``'s and DuckDB's): the store's business."""


def sql_outside_the_store(files: list[Path], sources: dict[Path, str] | None = None) -> list[str]:
    """One line per SQL statement (a string that starts like one) or store call outside ``store/``."""
    bad = []
    for path in files:
        if layer_of(module_name(path))[1] == "store":
            continue
        source = (sources or {}).get(path) or path.read_text()
        for node in ast.walk(ast.parse(source, str(path))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
                bad.append(f"{where}: SQL {node.value.strip()[:40]!r}; write a function in askhint_assets/store/")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STORE_CALLS:
                bad.append(f"{where}: {ast.unparse(node)[:60]}; write a function in askhint_assets/store/")
    return bad


def package_files() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def test_every_module_is_on_a_layer():
    unplaced = []
    for path in package_files():
        try:
            layer_of(module_name(path))
        except KeyError as e:
            unplaced.append(str(e))
    assert not unplaced, "\n".join(unplaced)


def test_no_module_imports_a_higher_layer_or_the_plugin():
    bad = violations(package_files())
    assert not bad, "imports that point up a layer:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("vlm/planted.py", "def f():\n    from askhint_assets.store import Store\n", "(core) imports askhint_assets.s"),
        ("store/planted.py", "from askhint_assets import inference\n", "(store) imports askhint_assets.inference"),
        ("video/planted.py", "import askhint_assets.orchestration.chain\n", "(core) imports askhint_assets.orch"),
        ("questions/planted.py", "from ..store import db\n", "(core) imports askhint_assets.store.db (store)"),
        ("store/planted.py", "from .. import cli_plan\n", "(store) imports askhint_assets.cli_plan (cli)"),
        ("orchestration/planted.py", "from askhint_assets.demo import hooks\n", "imports the plug-in"),
        ("evaluation/planted.py", "def f():\n    import dagster as dg\n", "imports dagster, which only orch"),
        ("pipeline/planted.py", "from duckdb import connect\n", "(pipeline) imports duckdb, which only store"),
        ("cli_planted.py", "", "on no layer"),
    ],
)
def test_the_fence_fails_on_a_planted_upward_import(module, source, expected):
    """A module that is not there, with an upward import (or on no layer): the fence names it."""
    planted = PKG / module
    if "no layer" in expected:
        with pytest.raises(KeyError, match=expected):
            violations([planted], {planted: source})
        return
    found = violations([planted], {planted: source})
    assert len(found) == 1 and expected in found[0], found


def test_sql_lives_in_the_store_only():
    bad = sql_outside_the_store(package_files())
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("source", [
    'st.query("SELECT 1")\n',
    'def f(con):\n    return con.execute(f"  SELECT count(*) FROM {t}").fetchone()\n',
    'Store(p).upsert("eval_reports", rows)\n',
])
def test_the_sql_fence_fails_on_planted_sql(source):
    planted = PKG / "cli_ops.py"
    assert sql_outside_the_store([planted], {planted: source})
    assert sql_outside_the_store([PKG / "store" / "db.py"], {PKG / "store" / "db.py": source}) == []


def test_a_lower_or_same_layer_import_passes():
    planted = PKG / "orchestration" / "planted.py"
    source = "from askhint_assets.store import Store\nfrom . import chain\nimport askhint_assets.paths, dagster\n"
    assert violations([planted], {planted: source}) == []


def _top_imports(path: Path, roots: tuple[str, ...]) -> set[str]:
    """Modules under ``roots`` that ``path`` imports, anywhere in the file (as written, absolute only)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        out |= {n for n in names if n.split(".")[0] in roots}
    return out


def test_bench_and_tests_do_not_import_each_other():
    """What both need lives in support/ (which imports neither), and engine/ for the real-engine tier."""
    found = {(str(p.relative_to(ROOT)), m) for p in sorted((ROOT / "bench").rglob("*.py"))
             for m in _top_imports(p, ("tests",))}
    found |= {(str(p.relative_to(ROOT)), m) for p in sorted((ROOT / "tests").rglob("*.py"))
              for m in _top_imports(p, ("bench",))}
    found |= {(str(p.relative_to(ROOT)), m) for p in sorted((ROOT / "support").rglob("*.py"))
              for m in _top_imports(p, ("tests", "bench"))}
    assert sorted(found) == []
