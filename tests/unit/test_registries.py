"""The backend registry and the data-set kind registry: lazy, the one source of names, reached by the
settings, the CLI and the Dagster resource; the core packages import neither Dagster nor the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from askhint_assets.datasets import registry as kinds
from askhint_assets.errors import InputError
from askhint_assets.vlm.backends import registry
from tests.fakes import forget_backend

ROOT = Path(__file__).resolve().parents[2]

CORE = ("askhint_assets.vlm", "askhint_assets.video", "askhint_assets.datasets", "askhint_assets.vlm.backends",
        "askhint_assets.vlm.backends.registry", "askhint_assets.datasets.registry")


def _modules_after(imports: str) -> list[str]:
    """``sys.modules`` of a fresh interpreter after ``imports``."""
    code = f"import json, sys\n{imports}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_core_packages_and_registries_import_neither_dagster_nor_the_demo():
    loaded = _modules_after("\n".join(f"import {m}" for m in (*CORE, "askhint_assets.settings",
                                                              "askhint_assets.settings_file")))
    assert set(CORE) <= set(loaded)
    assert [m for m in loaded if m == "dagster" or m.startswith(("dagster.", "dagster_"))] == []
    assert [m for m in loaded if m.startswith("askhint_assets.demo")] == []
    # lazy: listing the backends and kinds loads no backend, no model library and no data set module
    assert [m for m in loaded if m.endswith("_backend") or m.split(".")[0] in ("torch", "openai", "vllm")] == []
    assert not {"askhint_assets.datasets.ucf_crime", "askhint_assets.datasets.xd_violence"} & set(loaded)


def test_a_backend_module_is_imported_when_that_backend_is_built():
    loaded = _modules_after(
        "from askhint_assets.vlm.backends import build_backend\n"
        "b = build_backend('openai', 'served', base_urls=['http://127.0.0.1:9/v1'], device='cpu', dtype='float32')\n"
        "assert type(b).__name__ == 'OpenAIBackend' and b.base_urls == ['http://127.0.0.1:9/v1']"
    )
    assert "askhint_assets.vlm.backends.openai_backend" in loaded
    assert "askhint_assets.vlm.backends.transformers_backend" not in loaded and "torch" not in loaded


def test_registering_resolving_and_refusing_names():
    seen = {}

    def factory(model, **options):
        seen.update(model=model, **options)
        return "backend"

    registry.register_backend("reg_test", factory, options=("family", "batch_size"))
    registry.register_model_path("reg_test_path", lambda settings: f"/models/{settings['family']}")
    try:
        assert "reg_test" in registry.backend_names()
        assert registry.build_backend("reg_test", "reg_test_path", family="f", batch_size=2, device="x") == "backend"
        assert seen == {"model": "/models/f", "family": "f", "batch_size": 2}  # only its options; the path resolved
        with pytest.raises(ValueError, match="already registered"):
            registry.register_backend("reg_test", factory)
        registry.register_backend("reg_test", factory, local_model=False, replace=True)
        registry.build_backend("reg_test", "reg_test_path")
        assert seen["model"] == "reg_test_path"  # a server backend gets the name as written
    finally:
        forget_backend("reg_test")
        registry._PATH_HOOKS.pop("reg_test_path", None)
    with pytest.raises(InputError, match="unknown backend 'reg_test'; registered: transformers, openai, vllm") as e:
        registry.build_backend("reg_test", "m")
    assert e.value.field == "model.backend"


def test_the_demo_plugs_in_through_the_registries_on_the_first_miss(tmp_path):
    loaded = _modules_after(
        "from askhint_assets.datasets import registry as kinds\n"
        "from askhint_assets.vlm.backends import registry\n"
        "assert 'askhint_assets.demo.hooks' not in sys.modules and 'smoke' not in registry._PATH_HOOKS\n"
        "assert registry.resolve_model_path('/models/m') == '/models/m'  # a miss loads the plug-ins\n"
        "from askhint_assets.demo import hooks\n"
        "assert registry._PATH_HOOKS['smoke'] is hooks.smoke_model_path\n"
        "assert {k for k in kinds.KIND_NAMES if kinds.get_kind(k).has_demo} == set(kinds._DEMOS)\n"
    )
    # registering renders nothing and builds no model: those modules load when a demo or the model is needed
    assert not {"askhint_assets.demo.datasets", "askhint_assets.demo.smoke_model", "torch"} & set(loaded)
    with pytest.raises(InputError, match="no generated demo of the folder kind") as e:
        kinds.write_demo("folder", tmp_path)
    assert e.value.field == "dataset.root"


def test_vlm_resource_builds_through_the_registry_and_pins_shards_to_servers():
    from askhint_assets.orchestration.resources import VLMResource
    from askhint_assets.settings import ModelSettings

    built = []
    registry.register_backend("res_test", lambda model, **o: built.append((model, o)) or object(),
                              options=("base_urls",), local_model=False, needs_base_urls=True)
    try:
        urls = [f"http://gpu-{i}:8000/v1" for i in range(4)]
        r = VLMResource.from_settings(ModelSettings(backend="res_test", path="served", base_urls=tuple(urls)))
        assert r.backend == "res_test" and r.base_urls == urls and r.model_path == "served"
        assert r.get_backend() is r.get_backend()  # built once per run
        r.get_backend((1, 4))
        assert built == [("served", {"base_urls": urls}), ("served", {"base_urls": urls[1:2]})]
        assert r.resolved_model_path() == "served"
    finally:
        forget_backend("res_test")


def test_model_settings_are_defined_once():
    """The Dagster resource is the model settings' config surface, field for field (``path`` is its
    ``model_path``), with the same defaults; each backend's options are model settings; and the resource
    builds through ``backend_for``, so a setting added in one place and not the others fails here."""
    import dataclasses

    from askhint_assets.orchestration.resources import VLMResource
    from askhint_assets.settings import ModelSettings

    settings = dataclasses.asdict(ModelSettings())  # the defaults, as validated
    settings["model_path"] = settings.pop("path")
    resource = {name: f.get_default(call_default_factory=True) for name, f in VLMResource.model_fields.items()}
    assert set(resource) == set(settings)
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in resource.items()} == settings
    for name in registry.backend_names():
        assert set(registry.get_backend_entry(name).options) <= set(settings), name
    m = ModelSettings(backend="openai", path="served", base_urls=("http://a/v1",), max_retries=1)
    assert VLMResource.from_settings(m).settings() == m


def test_data_set_kinds_load_and_read_ground_truth_through_the_registry(tmp_path):
    assert kinds.KIND_NAMES == ("ucf_crime", "xd_violence", "folder")
    assert [k for k in kinds.KIND_NAMES if kinds.get_kind(k).has_demo] == ["ucf_crime", "xd_violence"]
    ann = tmp_path / "ann.txt"
    ann.write_text("Abuse028_x264.mp4  Abuse  10  30  -1  -1\nNormal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n")
    recs = kinds.ground_truth("ucf_crime", ann, [])
    assert [(r.video_id, r.intervals) for r in recs] == [("Abuse028_x264", ((10, 30),)), ("Normal_Videos_003_x264", ())]
    assert kinds.ground_truth("ucf-crime", ann, [], inclusive_end=True)[0].intervals == ((10, 31),)
    xd = tmp_path / "annotations.txt"
    xd.write_text("v=1__#1_label_B1-0-0 0 8\n")
    recs = kinds.ground_truth("xd_violence", xd, ["v=1__#1_label_B1-0-0", "clip__#1_label_A"])
    assert [(r.video_id, r.label, r.intervals) for r in recs] == [
        ("v=1__#1_label_B1-0-0", "Fighting", ((0, 8),)), ("clip__#1_label_A", "Normal", ())]
    with pytest.raises(InputError, match="unknown data set kind 'kinetics'; expected one of ucf_crime, xd_violence"):
        kinds.load_dataset("kinetics", tmp_path)


def test_cli_data_set_choices_are_the_registry_kinds_in_either_spelling():
    from askhint_assets.cli import main

    help_text = CliRunner().invoke(main, ["evaluate", "--help"]).output
    assert "[ucf_crime|xd_violence|folder]" in help_text
    bad = CliRunner().invoke(main, ["evaluate", "--dataset", "kinetics", "--annotations", __file__,
                                    "--scores", __file__])
    assert bad.exit_code == 2 and "'ucf_crime', 'xd_violence', 'folder'" in bad.output
    for spelling in ("xd_violence", "xd-violence"):  # the hyphen is the older CLI spelling of the same kind
        res = CliRunner().invoke(main, ["evaluate", "--dataset", spelling, "--annotations", __file__,
                                        "--scores", __file__])
        assert "Invalid value for '--dataset'" not in res.output
