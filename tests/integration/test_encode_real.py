"""The real encoders under the batch pipeline (issue 6): concurrent single-threaded batch calls give
the same vectors as one call at a time and as the query path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from shoplens.config import EncodeConfig
from shoplens.encode.batch import encode_images, encode_texts, model_workers
from shoplens.encode.efficientnet import EfficientNetLite0Onnx
from shoplens.encode.use_onnx import USEOnnxTextEncoder

from ..conftest import DEMO


def test_efficientnet_batch_and_query_sessions_agree() -> None:
    enc = EfficientNetLite0Onnx(EncodeConfig().resolved_cache_dir() / "models", threads=2)
    refs = sorted(str(p) for p in (DEMO / "images").glob("*.jpg"))[:12]
    imgs = [Image.open(r).convert("RGB") for r in refs]
    one_by_one = np.vstack([enc.encode([im]) for im in imgs])  # the query session (2 threads)
    with ThreadPoolExecutor(2) as pool:  # two batches at once on the single-threaded session
        halves = list(pool.map(enc.encode, [imgs[:6], imgs[6:]]))
    np.testing.assert_allclose(np.vstack(halves), one_by_one, atol=2e-5)
    assert model_workers(enc, threads=2) == 2
    res = encode_images(enc, refs, batch_size=4)
    assert res.ok == list(range(len(refs))) and res.encoded == len(refs)
    np.testing.assert_allclose(res.vectors, one_by_one, atol=2e-5)
    assert res.aux["probs"].shape == (len(refs), 32) and res.aux["colour"].shape == (len(refs), 114)


def test_use_parallel_batches_match_sequential() -> None:
    enc = USEOnnxTextEncoder()
    texts = ["red dress", "wool sweater for winter", "羊毛衫", "granny smith apple", "oat milk 1 l", "苹果"] * 3
    texts = [f"{t} {i}" for i, t in enumerate(texts)]
    seq, _ = encode_texts(enc, texts, batch_size=4, workers=1)
    par, _ = encode_texts(enc, texts, batch_size=4, workers=2)
    np.testing.assert_allclose(par, seq, atol=1e-6)


def test_efficientnet_input_side_is_a_setting() -> None:
    """One exported graph serves every side; each side keys its own cache entries."""
    models = EncodeConfig().resolved_cache_dir() / "models"
    small, full = EfficientNetLite0Onnx(models, size=160), EfficientNetLite0Onnx(models, size=224)
    assert small.name != full.name and small._path == full._path
    imgs = [Image.open(p).convert("RGB") for p in sorted((DEMO / "images").glob("*.jpg"))[:4]]
    a, b = small.encode(imgs), full.encode(imgs)
    assert a.shape == b.shape == (4, 1280)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cos = (a * b).sum(axis=1)
    assert np.all(cos > 0.7) and np.all(cos < 0.9999)  # the same photo, seen at another scale
