"""Demo machinery: the smoke-test model (build + train), synthetic clips and the generated demo data sets.

A plug-in: no module outside this package imports it (``tests/unit/test_layers.py``). The plug-in loader
(``askhint_assets.plugins``) calls :func:`askhint_assets.demo.hooks.register`, which registers the ``smoke``
model path and the demo data sets' generators with the registries.
"""
