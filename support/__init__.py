"""Helpers shared by ``tests/`` and ``bench/`` (neither imports the other, and this package imports neither):
data of published shapes, the cases of the golden processor fixtures, Qwen2.5's released vocabulary rebuilt
offline (``real_vocab``), the stand-in OpenAI server, the fault-injection harness, the cached demo data and
the Dagster UI driver. Not part of the ``askhint_assets`` package."""
