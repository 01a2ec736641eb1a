"""The demo under every fault of the reliability issue, against the stand-in server; prints a table.

    python bench/fault_injection.py [--quick] [--full-demo] [--keep DIR]

The stand-in server (``support/standin_server.py``, fault-injecting, insisting on an API key) runs in a
thread on a free 127.0.0.1 port; the pipeline uses the ``openai`` backend against it. Each fault gets a
fresh temporary ASKHINT_HOME: a clone of one home where everything before the model is materialized
(bad videos get a home of their own). A scenario applies its fault and runs the pipeline (in this
process, or as ``askhint update`` subprocesses where a process is killed or two run at once), clears the
fault, and times the recovering rerun. Columns, measured after that rerun:

* videos scored: ok videos with every unit scored by both templates, of the data set's videos;
* results lost: (unit, template) pairs of ok videos without a stored prediction (must be 0);
* duplicates: repeated prediction keys or responses, plus extra successful sends of one request (0);
* re-sent: requests answered before the recovering rerun and sent again by it (0);
* recover s: wall seconds of the recovering rerun (a no-op rerun where the faulty run completed).

Default: 12 demo videos (one per class, six normal), whole-video scoring. ``--full-demo``: all 36
videos, windows and whole videos. ``--quick``: a reduced set of faults. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from support import fault_harness as harness  # noqa: E402

Home = harness.Home
FAULTED = ("Shooting001_x264", "Normal_Videos_002_x264")  # the videos a server fault hits


@dataclass
class Row:
    fault: str
    faulty_run: str
    scored: str = "-"
    lost: int | str = "-"
    duplicates: int | str = "-"
    resent: int | str = "-"
    recover_s: str = "-"
    note: str = ""


@dataclass
class Ctx:
    server: harness.FaultServer
    base: Home
    tmp: Path
    make: Callable[..., Home]


_FAILED = re.compile(r"(\w+): (\d+) model request\(s\) failed after retries .*?the (\d+) other units are stored")


def _short(out: harness.RunOutcome) -> str:
    if out.ok:
        return f"ok ({out.seconds:.1f} s)"
    m = _FAILED.search(out.message)
    if m:
        return f"failed: {m[1]}: {m[2]} requests failed, {m[3]} units stored"
    msg = out.message.split(" failed: ", 1)[-1].splitlines()[0]
    msg = re.sub(r"\b(?:\w+\.)+(\w+(?:Error|Failure)):", r"\1:", msg)  # module paths off class names
    msg = re.sub(r"(?:/[^/\s:\"]+)+/", "", msg)  # folders off file names
    return "failed: " + (msg[:70] + "..." if len(msg) > 70 else msg)


def _recover(ctx: Ctx, home: Home, fault: str, faulty: str, note: str = "", subprocess_run: bool = False) -> Row:
    """Clear the server, rerun, and measure what the rerun left behind."""
    ctx.server.reset()
    answered = harness.ok_hashes(home)
    runs = [r for (r,) in home.query("SELECT DISTINCT run_id FROM model_calls")] if home.db.exists() else []
    t0 = time.perf_counter()
    if subprocess_run:
        proc = harness.spawn(home, home.root / "recover.log")
        ok = proc.wait(timeout=600) == 0
        out = harness.RunOutcome(ok, "" if ok else (home.root / "recover.log").read_text()[-300:], 0.0)
    else:
        out = harness.materialize(home)
    seconds = time.perf_counter() - t0
    if not out.ok:
        return Row(fault, faulty, note=f"recovery FAILED: {_short(out)}")
    sent = [h for (h,) in home.query(
        "SELECT request_hash FROM model_calls WHERE NOT list_contains(?, run_id)", [runs])]
    total = home.scalar("SELECT count(*) FROM videos")
    return Row(fault, faulty, f"{harness.videos_scored(home)}/{total}", harness.lost(home),
               harness.duplicates(home), len(set(sent) & answered), f"{seconds:.1f}", note)


# -- scenarios ----------------------------------------------------------------------------------------


def none(ctx: Ctx, home: Home) -> Row:
    return _recover(ctx, home, "none (baseline)", _short(harness.materialize(home)), "rerun is a no-op")


def bad_videos(ctx: Ctx, _home: Home) -> Row:
    home = ctx.make(ctx.tmp / "bad_videos_own")  # its own videos, not a clone
    harness.break_videos(home)
    out = harness.materialize(home)
    bad = home.query("SELECT status, count(*) FROM videos WHERE status <> 'ok' GROUP BY 1 ORDER BY 1")
    note = ", ".join(f"{n} {s}" for s, n in bad) + " (corrupt, truncated, empty, audio-only, unreadable, undecodable)"
    return _recover(ctx, home, "bad video files", _short(out), note)


def killed(ctx: Ctx, home: Home) -> Row:
    ctx.server.delay_s = 0.25
    proc = harness.spawn(home, home.root / "killed.log")
    deadline = time.monotonic() + 300
    while ctx.server.request_count < 10 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    harness.kill(proc)
    n = ctx.server.request_count
    return _recover(ctx, home, "SIGKILL mid-scoring", f"killed after {n} requests", subprocess_run=True,
                    note=f"{len(harness.ok_hashes(home))} answers kept from the killed run")


def concurrent(ctx: Ctx, home: Home) -> Row:
    ctx.server.delay_s = 0.05
    procs = [harness.spawn(home, home.root / f"run{i}.log") for i in range(2)]
    codes = [p.wait(timeout=600) for p in procs]
    logs = " ".join((home.root / f"run{i}.log").read_text() for i in range(2))
    locked = any(m in logs for m in ("Could not set lock", "Conflicting lock", "Traceback"))
    sent, distinct = ctx.server.request_count, home.scalar("SELECT count(DISTINCT request_hash) FROM model_calls")
    faulty = f"exit codes {codes}" + (", LOCK ERROR" if locked else "")
    return _recover(ctx, home, "two runs at once", faulty, f"{sent} requests for {distinct} distinct")


def _server_fault(kind: str, label: str, **knobs) -> Callable[[Ctx, Home], Row]:
    def run(ctx: Ctx, home: Home) -> Row:
        for k, v in knobs.items():
            setattr(ctx.server, k, v)
        ctx.server.fault_rule = harness.fault_by_video(home, dict.fromkeys(FAULTED, kind))
        out = harness.materialize(home)
        tried = sum(e.get("fault") == kind for e in ctx.server.log)
        return _recover(ctx, home, label, _short(out), f"{tried} attempts at the faulted requests")

    return run


def server_down(ctx: Ctx, home: Home) -> Row:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    urls = home.settings()["model"]["base_urls"]
    home.update_settings("model", base_urls=[dead])
    out = harness.materialize(home)
    home.update_settings("model", base_urls=urls)
    return _recover(ctx, home, "server down", _short(out))


def nonsense(ctx: Ctx, home: Home) -> Row:
    ctx.server.nonsense = True
    out = harness.materialize(home)
    unparsed = home.scalar("SELECT count(*) FILTER (NOT parse_ok) || '/' || count(*) FROM predictions")
    passed = harness.check_passed(home, "askhint_predictions", "parse_failure_rate")
    return _recover(ctx, home, "answers off the template", _short(out),
                    f"{unparsed} unparsed, scored from logprobs; parse_failure_rate passed={passed}")


def malformed_prompt(ctx: Ctx, home: Home) -> Row:
    path = home.root / "prompts_store" / "ucf_crime" / "class_questions.yaml"
    text = path.read_text()
    path.write_text(text.replace("Arrest:\n", "Arrest: [unclosed\n", 1))
    out = harness.materialize(home)
    n = ctx.server.request_count
    path.write_text(text)
    return _recover(ctx, home, "malformed prompt YAML", _short(out), f"{n} requests before the error")


def _patched(label: str, target: str, make_patch: Callable[[Home], Callable]) -> Callable[[Ctx, Home], Row]:
    def run(ctx: Ctx, home: Home) -> Row:
        with mock.patch(target, make_patch(home)):
            out = harness.materialize(home)
        return _recover(ctx, home, label, _short(out))

    return run


def _enospc_upsert(_home: Home) -> Callable:
    from askhint_assets.store import Store

    real = Store.upsert

    def upsert(self, table, rows):
        if table == "predictions":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, table, rows)

    return upsert


def _read_only_fs(home: Home) -> Callable:
    import duckdb

    real = duckdb.connect

    def connect(path=":memory:", read_only=False, **kw):
        if not read_only and str(path).startswith(str(home.root)):
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Read-only file system')
        return real(path, read_only=read_only, **kw)

    return connect


SCENARIOS: dict[str, Callable[[Ctx, Home], Row]] = {
    "none": none,
    "bad_videos": bad_videos,
    "killed": killed,
    "concurrent": concurrent,
    "down": server_down,
    "slow": _server_fault("hang", "slow (answer > timeout)", hang_s=2.5),
    "429": _server_fault("429", "HTTP 429 on 2 videos"),
    "500": _server_fault("500", "HTTP 500 on 2 videos"),
    "garbage": _server_fault("garbage", "non-JSON body on 2 videos"),
    "close": _server_fault("close", "dropped connection on 2 videos"),
    "nonsense": nonsense,
    "prompt": malformed_prompt,
    "disk_full": _patched("disk full (ENOSPC storing predictions)", "askhint_assets.store.Store.upsert",
                          _enospc_upsert),
    "read_only": _patched("read-only file system", "duckdb.connect", _read_only_fs),
}
QUICK = ("none", "killed", "concurrent", "down", "500", "garbage", "nonsense")


def table(rows: list[Row]) -> str:
    head = ("fault", "faulty run", "videos scored", "results lost", "duplicates", "re-sent", "recover s", "note")
    cells = [head] + [(r.fault, r.faulty_run, r.scored, str(r.lost), str(r.duplicates), str(r.resent), r.recover_s,
                       r.note) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--full-demo", action="store_true", help="all 36 demo videos, windows and whole videos")
    ap.add_argument("--keep", type=Path, help="keep the homes under this folder (default: a temporary one)")
    args = ap.parse_args(argv)
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)  # the table says what failed; Dagster's event log has the details
    names = QUICK if args.quick else tuple(SCENARIOS)
    videos, granularities = (None, None) if args.full_demo else (harness.SUBSET, ("video",))
    with contextlib.ExitStack() as stack:
        tmp = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="askhint-faults-")))
        server = harness.start_server(api_key=harness.API_KEY)
        stack.callback(server.stop)

        def make(root: Path) -> Home:
            return harness.make_home(root, server.base_url, videos=videos, granularities=granularities,
                                     model={"timeout_s": 1.5, "max_retries": 2})

        t0 = time.perf_counter()
        base = harness.prepare(make(tmp / "base"))
        print(f"stand-in server {server.base_url}; homes under {tmp}; "
              f"{base.scalar('SELECT count(*) FROM videos')} videos, "
              f"{base.scalar('SELECT count(*) FROM scoring_units')} units per template; "
              f"base home prepared in {time.perf_counter() - t0:.1f} s\n", flush=True)
        ctx = Ctx(server, base, tmp, make)
        rows = []
        for name in names:
            server.reset()
            home = harness.clone(base, tmp / name)
            t = time.perf_counter()
            rows.append(SCENARIOS[name](ctx, home))
            print(f"  {name}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
        print(table(rows))


if __name__ == "__main__":
    main()
