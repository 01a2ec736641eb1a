"""The real-engine tier's shared pieces (tests/engine and bench/prefix_cache.py import them; the package
askhint_assets does not): building the side environment, starting real servers, running the demo per backend,
comparing backends' answers."""
