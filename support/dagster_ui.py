"""Drive the Dagster UI from the tests and bench/screenshot_ui.py: a materialized home, `dagster dev` in its own process
group, GraphQL over 127.0.0.1, and headless Chromium (plain CLI; DevTools only for clicks)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from support.local_net import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GROUPS = ("prompts", "data", "inference", "evaluation")
REPORT_METADATA = ("report", "roc", "frame_auc")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)  # fmt: skip
# Below zoom 0.6 the graph draws "minimal" nodes with middle-truncated names ("questi…_embeddings");
# with every group expanded, fit-to-view reaches full nodes (names, status rows) from about 2400 px wide.
GRAPH_WINDOW = (2400, 1400)
PAGE_WINDOW = (1600, 1000)

def expected_assets() -> dict[str, str]:
    """``{asset key: group}`` of the demo definitions, as the UI should list them."""
    from askhint_assets.definitions import build_defs
    from askhint_assets.settings import PipelineSettings

    graph = build_defs(PipelineSettings()).resolve_asset_graph()
    return {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}


def home_env(home: Path) -> dict[str, str]:
    """The environment for a private ASKHINT_HOME/DAGSTER_HOME with the demo settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("ASKHINT_CONFIG", "ASKHINT_PROMPTS_STORE")}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)  # the checkout (tests.fakes)
    env.update(ASKHINT_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), PYTHONPATH=path)
    return env


def http_get(url: str, timeout_s: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return r.read()


def graphql(base: str, query: str, variables: dict | None = None, timeout_s: float = 30) -> dict:
    """POST a GraphQL query; raises on transport or GraphQL errors, returns ``data``."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{base}/graphql", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            out = json.loads(r.read())
    except urllib.error.HTTPError as e:  # a 400 carries the GraphQL errors in its body
        raise RuntimeError(f"GraphQL HTTP {e.code}: {e.read()[:2000]!r}") from e
    if out.get("errors"):
        raise RuntimeError(f"GraphQL errors: {out['errors']}")
    return out["data"]


def stop_group(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """SIGTERM the whole process group (webserver, daemon, code servers), SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children outliving the leader
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def dagster_ui(
    env: dict[str, str], log: Path, meanwhile: Callable[[], object] | None = None, timeout_s: float = 60
) -> Iterator[str]:
    """`dagster dev` (what `make ui` runs) on a free 127.0.0.1 port in a new process group; runs
    ``meanwhile()`` while it starts, then yields the base URL once /server_info answers and the code
    location's assets are listed, with the NUX dialog dismissed. Stops the whole group on exit."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(ROOT / "workspace.yaml")]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if meanwhile:
            meanwhile()
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                http_get(f"{base}/server_info", timeout_s=2)
                if graphql(base, "{ assetNodes { id } }", timeout_s=5)["assetNodes"]:
                    break
            except (OSError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"UI not ready after {timeout_s} s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        graphql(base, "mutation { setNuxSeen }")  # the "Join the Dagster community" dialog
        yield base
    finally:
        stop_group(proc)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def graph_url(base: str, groups: Sequence[str] = GROUPS) -> str:
    """The global asset lineage with every group expanded (``expanded`` query param of the UI)."""
    expanded = ",".join(f"global@global:{g}" for g in groups)
    return f"{base}/asset-groups?" + urllib.parse.urlencode({"expanded": expanded})


def render(url: str, screenshot: Path, window: tuple[int, int] = PAGE_WINDOW, timeout_s: float = 60) -> str:
    """Load ``url`` in headless Chromium, let 30 s of virtual time run, save a screenshot, return the DOM."""
    with tempfile.TemporaryDirectory(prefix="askhint-chromium-") as profile:
        proc = subprocess.run(
            [
                chromium_path() or "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                "--run-all-compositor-stages-before-draw", "--virtual-time-budget=30000",
                f"--window-size={window[0]},{window[1]}", f"--screenshot={screenshot}", "--dump-dom", url,
            ],
            capture_output=True, text=True, timeout=timeout_s,
        )  # fmt: skip
    if proc.returncode != 0 or not screenshot.exists():
        raise RuntimeError(f"chromium failed ({proc.returncode}) on {url}:\n{proc.stderr[-3000:]}")
    return proc.stdout


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def drawn_share(path: Path) -> float:
    """Share of the screenshot's pixels that differ from its most common colour (0 for a blank page).

    A content check instead of the file's byte size: the DOM of the same Chromium pass shows what was
    rendered, this shows the picture holds it (asset graph and ROC dialog: 0.25-0.29; the events page 0.06).
    """
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        px = np.asarray(im.convert("RGB")).reshape(-1, 3)
    _, counts = np.unique(px, axis=0, return_counts=True)
    return 1.0 - counts.max() / len(px)

