"""Text encoders over Hugging Face models: a sentence-transformers folder, or a plain AutoModel + mean pooling."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError
from .base import l2_normalize

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 32
MAX_TOKENS = 512


def local_model_dir(path_or_name: str) -> Path | None:
    """The folder when ``path_or_name`` is an existing local directory, else None (a hub name)."""
    p = Path(path_or_name).expanduser()
    return p.resolve() if p.is_dir() else None


def path_fingerprint(path: Path, digest_size: int = 8) -> str:
    """Hex hash of a file, or of every file's relative name and content in a folder (README/hidden aside).

    It goes into ``name``, which keys the embedding cache: a fine-tune written over the same folder
    has the same file names and sizes, so only the content tells it apart.
    """
    h = hashlib.blake2b(digest_size=digest_size)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        rel = f.relative_to(path) if f != path else Path(f.name)
        if any(part.startswith(".") for part in rel.parts) or f.suffix.lower() == ".md":
            continue
        h.update(rel.as_posix().encode() + b"\0")
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def _model_id(prefix: str, path_or_name: str, local: Path | None) -> str:
    return f"{prefix}:{path_or_name}" + (f"@{path_fingerprint(local)}" if local else "")


def _load_error(kind: str, path_or_name: str, local: Path | None, e: Exception) -> ConfigError:
    where = "local folder" if local else "model name (downloads need network access)"
    return ConfigError(f"cannot load {kind} model from {where} {path_or_name!r}: {e}")


class SentenceTransformerTextEncoder:
    """Any sentence-transformers model: a local folder (offline) or, with network access, a hub name."""

    def __init__(self, path_or_name: str, batch_size: int = DEFAULT_BATCH, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise MissingDependencyError("sentence-transformers", "st", "sentence-transformers models") from e
        local = local_model_dir(path_or_name)
        try:
            self._model = SentenceTransformer(
                str(local or path_or_name), device=device, local_files_only=local is not None
            )
        except (OSError, ValueError) as e:
            raise _load_error("sentence-transformers", path_or_name, local, e) from e
        self._model.eval()
        self.batch_size = batch_size
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        # Some modules do not declare their output size; one probe sentence tells.
        self.dim = int(dim) if dim else int(self._encode(["dim probe"]).shape[1])
        self.name = _model_id("st", path_or_name, local)
        logger.debug("loaded %s (dim %d)", self.name, self.dim)

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = self._model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self._encode(list(texts)))


class HFTextEncoder:
    """``AutoModel`` + ``AutoTokenizer``; sentence vector = attention-masked mean of the last hidden states."""

    def __init__(self, name_or_path: str, batch_size: int = DEFAULT_BATCH, device: str = "cpu") -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:
            raise MissingDependencyError("transformers", "st", "Hugging Face text models") from e
        local = local_model_dir(name_or_path)
        src = str(local or name_or_path)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=local is not None)
            self._model, info = AutoModel.from_pretrained(
                src, local_files_only=local is not None, output_loading_info=True
            )
        except (OSError, ValueError) as e:
            raise _load_error("transformers", name_or_path, local, e) from e
        if info.get("missing_keys"):
            # A pooler missing from an MLM checkpoint is harmless here; anything else is random weights.
            logger.warning("%s: weights not in the checkpoint (randomly initialised): %s",
                           name_or_path, sorted(info["missing_keys"]))
        if self._tokenizer.pad_token is None:  # decoder-style tokenisers have none; padding is masked anyway
            self._tokenizer.pad_token = self._tokenizer.eos_token or self._tokenizer.unk_token
        self._torch = torch
        self._device = torch.device(device)
        self._model.to(self._device).eval()
        cfg = self._model.config
        self.dim = int(cfg.hidden_size)
        limits = [MAX_TOKENS, self._tokenizer.model_max_length, getattr(cfg, "max_position_embeddings", None)]
        self.max_length = int(min(x for x in limits if x))
        self.batch_size = batch_size
        self.name = _model_id("hf-mean", name_or_path, local)
        logger.debug("loaded %s (dim %d, max %d tokens)", self.name, self.dim, self.max_length)

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc: Any = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        enc = {k: v.to(self._device) for k, v in enc.items()}
        hidden = self._model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return pooled.float().cpu().numpy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        items = list(texts)
        # Batch texts of similar length together so little compute goes on padding; restore order after.
        order = np.argsort([len(t) for t in items], kind="stable")
        out = np.empty((len(items), self.dim), np.float32)
        with self._torch.inference_mode():
            for i in range(0, len(items), self.batch_size):
                idx = order[i : i + self.batch_size]
                out[idx] = self._batch([items[j] for j in idx])
        return l2_normalize(out)
