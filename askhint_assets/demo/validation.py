"""The demo's validation split: the demo generator with another seed (other clips, the same event classes), for
choosing settings such as the uncertain band without looking at the demo's test annotations.

    python -m askhint_assets.demo.validation .askhint/data/demo_val
    ASKHINT_CONFIG=configs/demo_val.yaml askhint update
    askhint choose-band --config configs/demo_val.yaml --dataset demo_val
"""

from __future__ import annotations

import sys
from pathlib import Path

from askhint_assets.demo.datasets import generate_demo

VALIDATION_SEED = 1  # the test demo uses seed 0


def generate_validation(root: str | Path) -> Path:
    """Write the validation demo (2 anomalous clips per class, 8 normal ones, seed 1) under ``root``."""
    return generate_demo(root, n_anomalous_per_class=2, n_normal=8, seed=VALIDATION_SEED)


if __name__ == "__main__":
    print(generate_validation(sys.argv[1] if len(sys.argv) > 1 else ".askhint/data/demo_val"))
