"""Demo machinery: the smoke-test model (build + train), synthetic clips and the generated demo data sets.

Nothing in the production packages (``vlm``, ``video``, ``datasets``) imports this package; the backend
registry reaches the smoke model through one hook.
"""
