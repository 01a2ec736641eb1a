"""Private API of Dagster and dagster-celery is used in one module each: Dagster's in ``askhint update``'s
stale-status resolver, dagster-celery's internals in the executor module that builds the workers' app. An
upgrade that changes it fails here with a message saying what to fix; a use anywhere else fails the fence.

The fence reads the syntax tree, so it sees ``dg._core`` and ``dagster_celery.tasks`` through any alias and
ignores comments: an import of ``dagster._…`` or of a ``dagster_celery`` submodule, ``_…`` attributes of
``dagster`` (``dg.__version__`` and other dunders are public), any ``dagster_celery`` attribute but its
public ``celery_executor``, and two private methods with public-looking names.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[2]
PRIVATE_METHODS = re.compile(r"\b(dagster_internal_init|get_attributes_dict)\b")
CELERY_PUBLIC = {"celery_executor", "__version__"}
ALLOWED = {  # module -> the package whose private API it may use
    Path("askhint_assets/orchestration/update.py"): "dagster",
    Path("askhint_assets/orchestration/executors.py"): "dagster_celery",
}


def _private_module(name: str) -> str | None:
    """The package whose private module ``name`` is, if it is one."""
    parts = name.split(".")
    if parts[0] == "dagster" and any(p.startswith("_") for p in parts[1:]):
        return "dagster"
    if parts[0] == "dagster_celery" and len(parts) > 1:
        return "dagster_celery"
    return None


def _private_attr(package: str, attr: str) -> bool:
    if package == "dagster_celery":
        return attr not in CELERY_PUBLIC
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def private_uses(source: str) -> list[tuple[str, str]]:
    """``(package, what)`` for each use of private Dagster or dagster-celery API in ``source``."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> "dagster" | "dagster_celery"
    uses: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                if top in ("dagster", "dagster_celery") and (a.asname is None or a.name == top):
                    aliases[a.asname or top] = top
                if pkg := _private_module(a.name):
                    uses.append((pkg, f"line {node.lineno}: import {a.name}"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if pkg := _private_module(node.module):
                uses.append((pkg, f"line {node.lineno}: from {node.module} import ..."))
            elif node.module in ("dagster", "dagster_celery"):
                uses.extend((node.module, f"line {node.lineno}: from {node.module} import {a.name}")
                            for a in node.names if _private_attr(node.module, a.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            pkg = aliases[node.value.id]
            if _private_attr(pkg, node.attr):
                uses.append((pkg, f"line {node.lineno}: {node.value.id}.{node.attr}"))
    uses.extend(("dagster", f"{m.group(1)}") for m in PRIVATE_METHODS.finditer(source))
    return uses


def offenders(root: Path) -> list[str]:
    """Private uses in ``root/askhint_assets`` outside the module allowed for that package."""
    return [
        f"{rel}: {what}"
        for p in sorted((root / "askhint_assets").rglob("*.py"))
        for rel in [p.relative_to(root)]
        for pkg, what in private_uses(p.read_text())
        if ALLOWED.get(rel) != pkg
    ]


def test_no_module_but_the_allowed_ones_uses_private_api():
    found = offenders(ROOT)
    assert not found, f"private Dagster / dagster-celery API outside update.py / executors.py: {found}"


@pytest.mark.parametrize("source", [
    "import dagster as dg\nx = dg._core.definitions\n",
    "import dagster\ndagster._check.str_param('a', 'b')\n",
    "from dagster._core.definitions import AssetKey\n",
    "import dagster._time\n",
    "from dagster import _check\n",
    "import dagster_celery\napp = dagster_celery.make_app.make_app({})\n",
    "import dagster_celery.tasks\n",
    "from dagster_celery.defaults import broker_transport_options\n",
    "from dagster_celery import core_execution_loop\n",
    "spec.dagster_internal_init(key=None)\n",
])
def test_the_fence_catches_a_planted_offender(tmp_path, source):
    planted = tmp_path / "askhint_assets" / "orchestration" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(source)
    assert len(offenders(tmp_path)) == 1, source


def test_the_fence_lets_public_api_and_comments_pass():
    source = ("# dagster._core.definitions.data_version, dg._core, dagster_celery.tasks (a comment)\n"
              "import dagster as dg\nfrom dagster_celery import celery_executor\nimport dagster_celery\n"
              "x = dg.asset, dg.__version__, dagster_celery.celery_executor, celery_executor\n")
    assert private_uses(source) == []


def test_the_dagster_celery_internals_executors_relies_on_still_exist():
    pytest.importorskip("dagster_celery")
    import dagster_celery.defaults
    import dagster_celery.executor
    import dagster_celery.make_app
    import dagster_celery.tasks

    missing = [
        f"{obj.__name__}.{name}" for obj, name in (
            (dagster_celery.defaults, "broker_transport_options"), (dagster_celery.make_app, "make_app"),
            (dagster_celery.tasks, "create_task"), (dagster_celery.executor, "CeleryExecutor"),
            (dagster_celery.executor, "celery_executor"),
        ) if not hasattr(obj, name)
    ]
    assert not missing, f"dagster-celery lacks {missing}, which orchestration/executors.py uses"
    executor = dagster_celery.executor.CeleryExecutor
    assert hasattr(executor, "for_cli") and hasattr(executor, "app_args"), "executors.worker_app calls them"


def test_the_private_api_update_relies_on_still_exists():
    try:
        from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
        from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME
        from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
        from dagster._core.definitions.reconstruct import ReconstructableRepository
        from dagster._time import get_current_datetime
    except ImportError as e:
        pytest.fail(f"dagster {dg.__version__} moved private API that askhint_assets/orchestration/update.py "
                    f"imports ({e}); update its imports, or pin dagster to the last version that had them")
    missing = [
        name for obj, name in (
            (CachingStaleStatusResolver, "get_status"), (CachingStaleStatusResolver, "get_stale_root_causes"),
            (StaleStatus, "STALE"), (StaleStatus, "MISSING"), (ReconstructableRepository, "for_module"),
        ) if not hasattr(obj, name)
    ]
    assert not missing, f"dagster {dg.__version__} lacks {missing}, which orchestration/update.py calls"
    assert AssetGraphView and TemporalContext and IMPLICIT_ASSET_JOB_NAME and get_current_datetime
