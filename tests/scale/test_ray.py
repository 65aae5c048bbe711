"""Sharded search and distributed encoding through a real local Ray cluster (head + worker on loopback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoplens import Config, Engine
from shoplens.encode.fake import FakeImageEncoder, FakeTextEncoder
from shoplens.errors import NotFoundError, QueryError

pytest.importorskip("ray", reason="ray is not installed: pip install 'shoplens[scale]'")


def same(a: object, b: object) -> None:
    """Two SearchResults agree: ids, ranks, scores, signals (BM25's raw scores aside) and facets."""
    ha, hb = a.hits, b.hits  # type: ignore[attr-defined]
    assert [(h.id, h.rank) for h in ha] == [(h.id, h.rank) for h in hb]
    assert [h.score for h in ha] == pytest.approx([h.score for h in hb], abs=1e-6)
    for x, y in zip(ha, hb, strict=True):
        assert x.product == y.product
        dense = {k: v for k, v in x.signals.items() if not k.startswith("bm25")}
        assert dense == pytest.approx({k: v for k, v in y.signals.items() if not k.startswith("bm25")}, abs=1e-5)
    assert a.total == b.total  # type: ignore[attr-defined]
    assert a.facets == b.facets  # type: ignore[attr-defined]


def test_sharded_search_equals_single_index(ray_cluster: str, shop_catalog: Path, fake_config: Config, tmp_path: Path) -> None:
    from shoplens.scale import ShardedEngine, split_index

    # BM25 weighs words by each shard's own statistics (as Elasticsearch does by default), so
    # exact equality is checked with its vote at 0; the dense signals and fusion are exact.
    cfg = fake_config.replace(retrieve={"weights": {"bm25": 0.0, "text": 0.5, "image": 1.0}})
    single = Engine(tmp_path / "single", cfg)
    single.add_catalog(shop_catalog)
    split_index(tmp_path / "single", tmp_path / "shards", 2)
    photo = str(shop_catalog.parent / "img" / "7.jpg")
    with ShardedEngine.open(tmp_path / "shards", ray_cluster, cpus_per_shard=0.5) as sharded:
        assert len(sharded) == len(single) == 36
        for args in [("red dress",), ("shoes", None, ["gender=Women"]), ("", photo), ("blue bag", photo, ["price<30"])]:
            same(single.search(*args, k=8), sharded.search(*args, k=8))  # type: ignore[arg-type]
        same(single.search("jacket", k=5, offset=5), sharded.search("jacket", k=5, offset=5))
        same(single.similar("s3", k=6), sharded.similar("s3", k=6))
        same(single.similar("s3", k=6, filters=["gender=Men"]), sharded.similar("s3", k=6, filters=["gender=Men"]))
        assert sharded.get("s5") == single.get("s5")
        with pytest.raises(NotFoundError):
            sharded.get("nope")
        with pytest.raises(QueryError):
            sharded.search("x", filters=["price<<"])
        # With BM25 on, dense scores are still exact for every product both return.
        a, b = single.search("green shirt", k=10), sharded.search("green shirt", k=10)
        dense_a = {h.id: h.signals["text"] for h in a.hits if "text" in h.signals}
        dense_b = {h.id: h.signals["text"] for h in b.hits if "text" in h.signals}
        assert {i: dense_b[i] for i in dense_a if i in dense_b} == pytest.approx({i: dense_a[i] for i in dense_b if i in dense_a})


def test_distributed_encoding_fills_the_cache(
    ray_cluster: str, shop_catalog: Path, fake_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shoplens.cli.main import main
    from shoplens.scale.ray_encode import encode_catalog

    calls = {"text": 0, "image": 0}
    real_text, real_image = FakeTextEncoder.encode, FakeImageEncoder.encode

    def count_text(self: FakeTextEncoder, texts: list[str]) -> np.ndarray:
        calls["text"] += len(texts)
        return real_text(self, texts)

    def count_image(self: FakeImageEncoder, images: list[object]) -> np.ndarray:
        calls["image"] += len(images)
        return real_image(self, images)  # type: ignore[arg-type]

    # Only this process's encoders are counted: the Ray workers run the real (fake) ones.
    monkeypatch.setattr(FakeTextEncoder, "encode", count_text)
    monkeypatch.setattr(FakeImageEncoder, "encode", count_image)
    cache = tmp_path / "cache"
    argv = ["index", str(shop_catalog), "--out", str(tmp_path / "ray-index"), "--ray", ray_cluster,
            "--text-encoder", "fake", "--image-encoder", "fake", "--no-progress", "--set", f"encode.cache_dir={cache}"]
    assert main(argv) == 0
    assert calls == {"text": 0, "image": 0}  # everything came from the cluster through the cache

    again = encode_catalog(shop_catalog, fake_config.replace(encode={"cache_dir": str(cache)}), ray_cluster)
    assert (again.texts, again.photos) == (0, 36)  # cached texts are not sent again
    assert again.entries >= 36  # photo vectors (and their side outputs)

    local = Engine(tmp_path / "local", fake_config.replace(encode={"cache": False}))
    local.add_catalog(shop_catalog)
    remote = Engine.open(tmp_path / "ray-index").state
    order = [remote.id_to_row[p.id] for p in local.state.products]
    np.testing.assert_allclose(remote.text_vectors[order], local.state.text_vectors, atol=1e-6)
    np.testing.assert_allclose(remote.image_vectors[order], local.state.image_vectors, atol=1e-6)
