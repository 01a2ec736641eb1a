"""Fixtures of the reliability tests: one fault-injecting stand-in server that insists on a
distinctive API key, and one home with everything before the model materialized, which tests clone."""

from __future__ import annotations

import pytest

from support import fault_harness as harness


@pytest.fixture(scope="session")
def server():
    s = harness.start_server(api_key=harness.API_KEY)
    yield s
    s.stop()


@pytest.fixture
def standin(server):
    """The session's server with faults, knobs and counters cleared before and after the test."""
    server.reset()
    yield server
    server.reset()


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, server) -> harness.Home:
    """Prompt chain, video index and frames of the demo subset, materialized once; clone, never edit."""
    home = harness.make_home(tmp_path_factory.mktemp("prepared") / "home", server.base_url, api_key=harness.API_KEY)
    return harness.prepare(home)
