"""The generated demo data sets, rendered once into the shared cache and copied into a home: for the tests'
homes and the fault-injection bench alike."""

from __future__ import annotations

from pathlib import Path


def cached_demo_data(kind: str = "ucf_crime") -> Path:
    """The generated demo data set of layout ``kind`` with the pipeline's default parameters, rendered once
    into the shared cache (next to the model cache) under a file lock, keyed by the content of the code
    that renders it; every test home copies it instead of rendering the same videos again."""
    from askhint_assets import paths
    from askhint_assets.demo import datasets, synth
    from askhint_assets.file_lock import exclusive
    from askhint_assets.hashing import hash_file, hash_obj

    key = hash_obj({"kind": kind, "datasets": hash_file(datasets.__file__), "synth": hash_file(synth.__file__)})
    root = paths.model_cache_dir().parent / "demo-data"
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f".{kind}-{key}.lock"):
        return datasets.DEMO_GENERATORS[kind](root / f"{kind}-{key}")  # idempotent: its manifest says if done


def seed_demo_data(home: Path, kind: str = "ucf_crime") -> Path:
    """Copy the cached demo data set to where the pipeline looks for it in ``home`` (it then finds it complete)."""
    import shutil

    target = home / "data" / {"ucf_crime": "demo_ucf", "xd_violence": "demo_xd"}[kind]
    shutil.copytree(cached_demo_data(kind), target, dirs_exist_ok=True)
    return target
