"""Helpers shared by ``tests/`` and ``bench/`` (neither imports the other): data of published shapes and the
cases of the golden processor fixtures. Not part of the ``askhint_assets`` package."""
