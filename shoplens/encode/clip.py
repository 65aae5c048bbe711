"""CLIP text and image encoders (one shared space) from a transformers CLIP folder or an open_clip checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from ..errors import ConfigError, MissingDependencyError
from .base import l2_normalize
from .hf import local_model_dir, path_fingerprint

logger = logging.getLogger(__name__)

Tower = Literal["text", "image"]
DEFAULT_BATCH = 32


def open_clip_spec(path: str) -> tuple[str, str | None] | None:
    """``(model_name, pretrained)`` for open_clip, or None when ``path`` is meant for transformers.

    open_clip forms: a folder holding ``open_clip_config.json`` (needs open_clip_torch>=3.0),
    ``ARCH:/path/to/checkpoint.pt`` (e.g. ``ViT-B-32:/models/clip.pt``) or ``hf-hub:org/name``.
    """
    if path.startswith("hf-hub:"):
        return path, None
    p = Path(path).expanduser()
    if p.is_dir() and (p / "open_clip_config.json").is_file():
        return f"local-dir:{p.resolve()}", None
    arch, sep, ckpt = path.partition(":")
    if sep and arch and Path(ckpt).expanduser().is_file():
        return arch, str(Path(ckpt).expanduser().resolve())
    return None


def _pil_image_processor(src: str, local_files_only: bool) -> Any:
    """CLIP's resize + centre-crop + normalise, on PIL + numpy (never torchvision)."""
    processor_cls: Any
    try:  # transformers >= 5 names the PIL/numpy backend explicitly
        from transformers import CLIPImageProcessorPil as processor_cls
    except ImportError:  # transformers 4.x: the slow CLIPImageProcessor is PIL/numpy; the Fast one is not
        from transformers import CLIPImageProcessor as processor_cls
    return processor_cls.from_pretrained(src, local_files_only=local_files_only)


class _HFClip:
    """One tower of a transformers ``CLIPModel``; the other tower is dropped after loading."""

    def __init__(self, path: str, tower: Tower, device: str) -> None:
        try:
            import torch
            from transformers import AutoTokenizer, CLIPModel
        except ImportError as e:
            raise MissingDependencyError("transformers", "clip", "CLIP models") from e
        local = local_model_dir(path)
        src, offline = str(local or path), local is not None
        try:
            loaded: Any = CLIPModel.from_pretrained(src, local_files_only=offline, output_loading_info=True)
            model, info = loaded
            if tower == "text":
                self.tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=offline)
            else:
                self.processor = _pil_image_processor(src, offline)
        except (OSError, ValueError) as e:
            where = "local folder" if local else "model name (downloads need network access)"
            raise ConfigError(f"cannot load a CLIP model from {where} {path!r}: {e}") from e
        if info.get("missing_keys"):
            logger.warning("%s: weights not in the checkpoint (randomly initialised): %s",
                           path, sorted(info["missing_keys"]))
        self.torch = torch
        self.device = torch.device(device)
        if tower == "text":
            self.tower, self.proj = model.text_model, model.text_projection
            self.max_length = int(model.config.text_config.max_position_embeddings)
        else:
            self.tower, self.proj = model.vision_model, model.visual_projection
        self.tower.to(self.device).eval()
        self.proj.to(self.device).eval()
        self.dim = int(model.config.projection_dim)
        self.id = f"{path}@{path_fingerprint(local)}" if local else path

    def text(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        out = self.tower(
            input_ids=enc["input_ids"].to(self.device), attention_mask=enc["attention_mask"].to(self.device)
        )
        return self.proj(out.pooler_output).float().cpu().numpy()

    def images(self, images: list[Image.Image]) -> np.ndarray:
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        return self.proj(self.tower(pixel_values=pixels).pooler_output).float().cpu().numpy()


class _OpenClip:
    """An open_clip model with its own tokenizer and (torchvision) eval transform."""

    def __init__(self, path: str, model_name: str, pretrained: str | None, device: str) -> None:
        try:
            import open_clip
            import torch
        except ImportError as e:
            raise MissingDependencyError("open_clip_torch", "open-clip", "open_clip checkpoints") from e
        self.torch = torch
        self.device = torch.device(device)
        model, _, self.preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, device=self.device
        )
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)
        target = pretrained or model_name.removeprefix("local-dir:")
        local = Path(target) if Path(target).exists() else None
        self.id = f"{path}@{path_fingerprint(local)}" if local else path
        with torch.inference_mode():  # output size differs by tower type; one probe tells
            self.dim = int(self.text(["dim probe"]).shape[1])

    def text(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens).float().cpu().numpy()

    def images(self, images: list[Image.Image]) -> np.ndarray:
        batch = self.torch.stack([self.preprocess(im) for im in images]).to(self.device)
        return self.model.encode_image(batch).float().cpu().numpy()


def _load(path: str, tower: Tower, device: str) -> _HFClip | _OpenClip:
    spec = open_clip_spec(path)
    if spec is not None:
        return _OpenClip(path, spec[0], spec[1], device)
    return _HFClip(path, tower, device)


class ClipTextEncoder:
    """CLIP text tower; its vectors share a space with :class:`ClipImageEncoder` on the same ``path``."""

    def __init__(self, path: str, batch_size: int = DEFAULT_BATCH, device: str = "cpu") -> None:
        self._impl = _load(path, "text", device)
        self.dim = self._impl.dim
        self.batch_size = batch_size
        self.name = f"clip-text:{self._impl.id}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        items = list(texts)
        with self._impl.torch.inference_mode():
            parts = [self._impl.text(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)]
        return l2_normalize(np.concatenate(parts))


class ClipImageEncoder:
    """CLIP image tower; takes RGB PIL images (other modes are converted)."""

    def __init__(self, path: str, batch_size: int = DEFAULT_BATCH, device: str = "cpu") -> None:
        self._impl = _load(path, "image", device)
        self.dim = self._impl.dim
        self.batch_size = batch_size
        # Preprocessing is part of the key: PIL resizing (here) and torchvision's differ slightly.
        backend = "open_clip" if isinstance(self._impl, _OpenClip) else "pil"
        self.name = f"clip-image-{backend}:{self._impl.id}"

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        rgb = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        with self._impl.torch.inference_mode():
            parts = [self._impl.images(rgb[i : i + self.batch_size]) for i in range(0, len(rgb), self.batch_size)]
        return l2_normalize(np.concatenate(parts))
