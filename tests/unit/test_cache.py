"""The embedding cache (shoplens.encode.cache) and cached batch encoding (shoplens.encode.batch)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shoplens.encode.batch import encode_images, encode_texts
from shoplens.encode.cache import EmbeddingCache, content_key
from shoplens.encode.fake import FakeImageEncoder, FakeTextEncoder


@pytest.fixture()
def cache(tmp_path: Path) -> Iterator[EmbeddingCache]:
    c = EmbeddingCache(tmp_path / "cache" / "emb.sqlite")
    yield c
    c.close()


def vec(*xs: float) -> np.ndarray:
    return np.array(xs, np.float32)


# --- content_key -------------------------------------------------------------------------------


def test_content_key_is_sha256_of_utf8() -> None:
    # the well-known SHA-256 of "abc" (FIPS 180-2, appendix B.1)
    assert content_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert content_key(b"abc") == content_key("abc")
    assert content_key("红色连衣裙") == hashlib.sha256("红色连衣裙".encode()).hexdigest()
    assert content_key("abc") != content_key("abc ")
    assert content_key("") == hashlib.sha256(b"").hexdigest()


# --- EmbeddingCache ----------------------------------------------------------------------------


def test_put_get_round_trip(cache: EmbeddingCache) -> None:
    a, b = vec(0.1, 0.2, 0.3), vec(-1.0, 0.5, 2.0)
    cache.put_many("m", [("ka", a), ("kb", b)])
    got = cache.get_many("m", ["ka", "kb", "missing", "ka"])
    assert set(got) == {"ka", "kb"}
    np.testing.assert_array_equal(got["ka"], a)
    np.testing.assert_array_equal(got["kb"], b)
    assert got["ka"].dtype == np.float32


def test_float64_vectors_are_stored_as_float32(cache: EmbeddingCache) -> None:
    cache.put_many("m", [("k", np.array([1 / 3, 2.0]))])
    got = cache.get_many("m", ["k"])["k"]
    assert got.dtype == np.float32 and got.tolist() == [np.float32(1 / 3), 2.0]


def test_models_do_not_collide(cache: EmbeddingCache) -> None:
    cache.put_many("model-a", [("k", vec(1.0, 0.0))])
    cache.put_many("model-b", [("k", vec(0.0, 1.0, 0.0))])
    assert cache.get_many("model-a", ["k"])["k"].tolist() == [1.0, 0.0]
    assert cache.get_many("model-b", ["k"])["k"].tolist() == [0.0, 1.0, 0.0]
    assert cache.get_many("model-c", ["k"]) == {}


def test_put_replaces_an_existing_entry(cache: EmbeddingCache) -> None:
    cache.put_many("m", [("k", vec(1.0))])
    cache.put_many("m", [("k", vec(2.0, 3.0))])
    assert cache.get_many("m", ["k"])["k"].tolist() == [2.0, 3.0]


def test_empty_calls(cache: EmbeddingCache) -> None:
    cache.put_many("m", [])
    assert cache.get_many("m", []) == {}


def test_many_keys_span_query_chunks(cache: EmbeddingCache) -> None:
    # more than the 500 keys per SQL query
    items = [(f"k{i}", vec(float(i), 1.0)) for i in range(1203)]
    cache.put_many("m", items)
    got = cache.get_many("m", [k for k, _ in items] + ["nope"])
    assert len(got) == 1203
    assert got["k0"].tolist() == [0.0, 1.0] and got["k1202"].tolist() == [1202.0, 1.0]


def test_reopen_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "emb.sqlite"  # parent folders are created
    first = EmbeddingCache(path)
    first.put_many("m", [("k", vec(0.25, 0.5))])
    first.close()
    assert path.is_file()
    again = EmbeddingCache(path)
    try:
        assert again.get_many("m", ["k"])["k"].tolist() == [0.25, 0.5]
    finally:
        again.close()


# --- encode_texts ------------------------------------------------------------------------------


class CountingText:
    """A FakeTextEncoder that records every text it is asked to encode."""

    def __init__(self, dim: int = 64) -> None:
        self.inner = FakeTextEncoder(dim)
        self.name = self.inner.name
        self.dim = dim
        self.seen: list[str] = []
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.seen.extend(texts)
        return self.inner.encode(texts)


TEXTS = ["red dress", "wool sweater", "red dress", "running shoes for men", ""]


def test_encode_texts_encodes_duplicates_once_without_a_cache() -> None:
    enc = CountingText()
    out, n = encode_texts(enc, TEXTS)
    assert n == 4 and sorted(enc.seen) == sorted(set(TEXTS))
    assert out.shape == (5, 64) and out.dtype == np.float32
    np.testing.assert_array_equal(out, FakeTextEncoder(64).encode(TEXTS))
    np.testing.assert_array_equal(out[0], out[2])


def test_encode_texts_second_call_is_all_cache_hits(cache: EmbeddingCache) -> None:
    enc = CountingText()
    first, n1 = encode_texts(enc, TEXTS, cache)
    assert n1 == 4
    enc.seen.clear()
    second, n2 = encode_texts(enc, TEXTS, cache)
    assert n2 == 0 and enc.seen == []
    np.testing.assert_array_equal(second, first)


def test_encode_texts_only_new_texts_are_encoded(cache: EmbeddingCache) -> None:
    enc = CountingText()
    encode_texts(enc, ["red dress", "wool sweater"], cache)
    enc.seen.clear()
    out, n = encode_texts(enc, ["wool sweater", "blue jeans", "red dress"], cache)
    assert n == 1 and enc.seen == ["blue jeans"]
    expected = FakeTextEncoder(64).encode(["wool sweater", "blue jeans", "red dress"])
    np.testing.assert_array_equal(out, expected)


def test_encode_texts_cache_is_per_model(cache: EmbeddingCache) -> None:
    encode_texts(CountingText(64), ["red dress"], cache)
    other = CountingText(32)  # another name ("fake-text-32") and dimension
    out, n = encode_texts(other, ["red dress"], cache)
    assert n == 1 and out.shape == (1, 32)


def test_encode_texts_batches(cache: EmbeddingCache) -> None:
    enc = CountingText()
    texts = [f"product number {i}" for i in range(7)]
    out, n = encode_texts(enc, texts, cache, batch_size=3)
    assert n == 7 and enc.calls == 3  # 3 + 3 + 1
    np.testing.assert_array_equal(out, FakeTextEncoder(64).encode(texts))


def test_encode_texts_empty_input() -> None:
    enc = CountingText()
    out, n = encode_texts(enc, [])
    assert out.shape == (0, 64) and n == 0 and enc.calls == 0


# --- encode_images -----------------------------------------------------------------------------


class CountingImage(FakeImageEncoder):
    def __init__(self) -> None:
        self.count = 0

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.count += len(images)
        return super().encode(images)


@pytest.fixture()
def photo_refs(tmp_path: Path) -> list[str]:
    refs = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 250, 0)]):
        path = tmp_path / f"p{i}.jpg"
        Image.new("RGB", (24, 16), colour).save(path, "JPEG")
        refs.append(str(path))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(Path(refs[0]).read_bytes()[:120])  # a truncated JPEG
    refs.insert(2, str(corrupt))  # index 2 fails
    refs.append(str(tmp_path / "missing.jpg"))  # index 5 fails
    return refs


def test_encode_images_reports_failures_and_caches(cache: EmbeddingCache, photo_refs: list[str]) -> None:
    enc = CountingImage()
    res = encode_images(enc, photo_refs, cache, batch_size=2, workers=2)
    assert res.ok == [0, 1, 3, 4]
    assert set(res.failed) == {2, 5}
    assert "truncated" in res.failed[2] or "corrupt" in res.failed[2]
    assert "not found" in res.failed[5]
    assert res.encoded == 4 and enc.count == 4
    assert res.vectors.shape == (4, FakeImageEncoder.dim) and res.vectors.dtype == np.float32
    expected = FakeImageEncoder().encode([Image.open(photo_refs[i]).convert("RGB") for i in res.ok])
    np.testing.assert_allclose(res.vectors, expected, atol=1e-6)

    again = encode_images(enc, photo_refs, cache, batch_size=3)
    assert again.encoded == 0 and enc.count == 4
    assert again.ok == res.ok and set(again.failed) == {2, 5}
    np.testing.assert_array_equal(again.vectors, res.vectors)


def test_encode_images_without_cache_and_all_failing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image", encoding="utf-8")
    res = encode_images(FakeImageEncoder(), [str(bad)])
    assert res.ok == [] and res.encoded == 0 and res.vectors.shape == (0, FakeImageEncoder.dim)
    assert "not a recognised image" in res.failed[0]
    empty = encode_images(FakeImageEncoder(), [])
    assert empty.ok == [] and empty.failed == {} and empty.vectors.shape == (0, FakeImageEncoder.dim)
