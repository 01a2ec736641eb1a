"""Helpers shared by ``tests/`` and ``bench/`` (neither imports the other): data of published shapes, the
cases of the golden processor fixtures and Qwen2.5's released vocabulary rebuilt offline (``real_vocab``).
Not part of the ``askhint_assets`` package."""
