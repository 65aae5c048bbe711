"""Build encoders from a spec string (``use-onnx``, ``e5``, ``st:PATH``, ``hf:NAME``, ``clip:PATH``...)."""

from __future__ import annotations

from ..config import EncodeConfig
from ..errors import ConfigError
from .base import ImageEncoder, TextEncoder

TEXT_SPECS = "use-onnx, use-numpy, e5, st:PATH_OR_NAME, hf:NAME_OR_PATH, clip:PATH, fake"
IMAGE_SPECS = "efficientnet-lite0, efficientnet-lite0-torch, clip:PATH, fake"


def build_text_encoder(cfg: EncodeConfig) -> TextEncoder:
    spec = cfg.text_encoder
    kind, _, arg = spec.partition(":")
    if kind == "use-onnx":
        from .use_onnx import USEOnnxTextEncoder

        return USEOnnxTextEncoder(arg or None, threads=cfg.threads)
    if kind == "use-numpy":
        from .use_numpy import USENumpyTextEncoder

        return USENumpyTextEncoder()
    if kind == "e5":
        from .e5 import E5TextEncoder

        return E5TextEncoder()
    if kind == "st" and arg:
        from .hf import SentenceTransformerTextEncoder

        return SentenceTransformerTextEncoder(arg)
    if kind == "hf" and arg:
        from .hf import HFTextEncoder

        return HFTextEncoder(arg)
    if kind == "clip" and arg:
        from .clip import ClipTextEncoder

        return ClipTextEncoder(arg)
    if kind == "fake":
        from .fake import FakeTextEncoder

        return FakeTextEncoder(int(arg) if arg else 64)
    raise ConfigError(f"unknown text encoder {spec!r}; choose one of: {TEXT_SPECS}")


SIZED_IMAGE_ENCODERS = ("efficientnet-lite0", "efficientnet-lite0-torch")  # those that read encode.*image_size


def build_image_encoder(cfg: EncodeConfig, query: bool = False) -> ImageEncoder:
    """The configured photo encoder for the catalogue's photos (``encode.image_size``, and
    ``encode.plain_image_size`` for products on a plain background) or, with ``query``, for query
    photos (``encode.query_image_size`` for every photo), for the encoders that take a side."""
    spec = cfg.image_encoder
    kind, _, arg = spec.partition(":")
    side, plain = (cfg.query_image_size, 0) if query else (cfg.image_size, cfg.plain_image_size)
    if kind == "efficientnet-lite0":
        from .efficientnet import EfficientNetLite0Onnx

        return EfficientNetLite0Onnx(cfg.resolved_cache_dir() / "models", threads=cfg.threads, size=side, plain_size=plain)
    if kind == "efficientnet-lite0-torch":
        from .efficientnet import EfficientNetLite0Torch

        return EfficientNetLite0Torch(threads=cfg.threads, size=side, plain_size=plain)
    if kind == "clip" and arg:
        from .clip import ClipImageEncoder

        return ClipImageEncoder(arg)
    if kind == "fake":
        from .fake import FakeImageEncoder

        return FakeImageEncoder()
    raise ConfigError(f"unknown image encoder {spec!r}; choose one of: {IMAGE_SPECS}")
