"""Screenshots of the Dagster UI for the docs: the asset graph and the evaluation report's ROC curve.

    python bench/screenshot_ui.py [--home DIR] [--out docs]

Takes the pictures of an already materialized home, by default `make demo`'s own ($ASKHINT_HOME, else
./.askhint; `make screenshots` after `make demo`), so the README shows the reproducible demo, never a
test double's run. Starts `dagster dev` on a free 127.0.0.1 port and
stops its process group at the end. The graph comes from Chromium's plain --screenshot; the ROC curve
sits behind a "[Show Markdown]" link, so that page is driven over the DevTools protocol to click it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from websockets.sync.client import connect  # noqa: E402  (a dependency of dagster-webserver's uvicorn)

from support import dagster_ui as ui  # noqa: E402

OPEN_ROC = """(() => {
  const key = [...document.querySelectorAll('td span')].find(s => s.textContent.trim() === 'roc');
  const link = key && key.closest('tr').querySelector('a');
  if (link) link.click();
  return !!link;
})()"""
ROC_SHOWN = "[...document.querySelectorAll('img[src^=\"data:image/png\"]')].some(i => i.complete && i.naturalWidth)"


class DevTools:
    """Just enough of the Chrome DevTools protocol: one page, commands in order (uses `websockets`)."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, timeout_s: float = 30, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, js: str):
        return self.call("Runtime.evaluate", expression=js, returnByValue=True)["result"].get("value")

    def wait_for(self, js: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.eval(js):
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {js}")
            time.sleep(0.25)


@contextlib.contextmanager
def devtools_chromium(window: tuple[int, int]):
    """Headless Chromium with DevTools on an OS-chosen 127.0.0.1 port; yields a DevTools for its page."""
    with tempfile.TemporaryDirectory(prefix="askhint-chromium-") as profile:
        proc = subprocess.Popen(
            [
                ui.chromium_path() or "chromium", *ui.CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                f"--window-size={window[0]},{window[1]}", "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chromium did not open its DevTools port")
                time.sleep(0.1)
            port = port_file.read_text().split()[0]
            pages = json.loads(ui.http_get(f"http://127.0.0.1:{port}/json/list"))
            ws_url = next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"]
            with connect(ws_url, max_size=64 * 2**20, open_timeout=10) as ws:
                yield DevTools(ws)
        finally:
            ui.stop_group(proc, grace_s=5)


def screenshot_roc(base: str, out: Path, window: tuple[int, int] = ui.PAGE_WINDOW) -> None:
    """The evaluation_report events page with the `roc` metadata (a markdown image) opened."""
    with devtools_chromium(window) as dt:
        dt.call("Page.enable")
        w, h = window
        dt.call("Emulation.setDeviceMetricsOverride", width=w, height=h, deviceScaleFactor=1, mobile=False)
        dt.call("Page.navigate", url=f"{base}/assets/evaluation_report?view=events")
        dt.wait_for("document.body && document.body.innerText.includes('Materialized in run')")
        dt.wait_for(OPEN_ROC)
        dt.wait_for(ROC_SHOWN)
        time.sleep(1.0)  # the dialog's open transition
        png = dt.call("Page.captureScreenshot", format="png")["data"]
    out.write_bytes(base64.b64decode(png))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None,
                    help="a materialized ASKHINT_HOME (default: $ASKHINT_HOME, else ./.askhint: make demo's)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--config", type=Path, help="settings file (ASKHINT_CONFIG) of --home: only the asset graph is "
                    "taken, as ui-asset-graph-<config name>.png")
    args = ap.parse_args()
    from askhint_assets import paths

    home = (args.home or paths.home()).resolve()
    if not (home / "reports").is_dir() or not (home / "askhint.duckdb").is_file():
        sys.exit(f"{home}: no materialized demo there (no reports/ or askhint.duckdb); run `make demo` first")
    if not ui.chromium_path():
        sys.exit("chromium is not installed: run `make system-deps`")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="askhint-ui-") as tmp:
        env = ui.home_env(home)
        if args.config:
            env["ASKHINT_CONFIG"] = str(args.config.resolve())
        with ui.dagster_ui(env, Path(tmp) / "dagster-dev.log") as base:
            if args.config:
                from askhint_assets.definitions import build_defs
                from askhint_assets.settings_file import load_settings

                graph_def = build_defs(load_settings(args.config)).resolve_asset_graph()
                groups = sorted({graph_def.get(k).group_name for k in graph_def.get_all_asset_keys()})
                graph = args.out / f"ui-asset-graph-{args.config.stem}.png"
                ui.render(ui.graph_url(base, groups), graph, window=ui.GRAPH_WINDOW)
                print(f"wrote {graph}")
                return
            graph = args.out / "ui-asset-graph.png"
            ui.render(ui.graph_url(base), graph, window=ui.GRAPH_WINDOW)
            report = args.out / "ui-report.png"
            screenshot_roc(base, report)
    print(f"wrote {graph} and {report}")


if __name__ == "__main__":
    main()
