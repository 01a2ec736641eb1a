"""The README's `vllm serve` recipe is the one the real-engine tier starts (engine/server.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from engine.server import VLLM_SERVE_FLAGS

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_recipe() -> list[str]:
    blocks = re.findall(r"```bash\n(vllm serve .*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, f"expected one `vllm serve` block in the README, found {len(blocks)}"
    tokens = shlex.split(blocks[0].replace("\\\n", " "))
    assert tokens[:2] == ["vllm", "serve"]
    flags, rest = [], tokens[3:]  # after `vllm serve MODEL`
    while rest:
        tok = rest.pop(0)
        if tok in ("--port", "--max-model-len"):  # the deployment's own: not part of the recipe
            rest.pop(0)
            continue
        flags.append(tok)
    return flags


def test_the_readme_recipe_is_the_tier_s() -> None:
    assert readme_recipe() == list(VLLM_SERVE_FLAGS)
