"""The fast paths of batch encoding (issue 6): cache before decode, one batch per core, exact preprocessing."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import shoplens.encode.batch as batch
from shoplens.config import IngestConfig
from shoplens.encode.batch import encode_images, encode_texts, model_workers
from shoplens.encode.cache import EmbeddingCache
from shoplens.encode.efficientnet import MEAN, STD, preprocess
from shoplens.encode.fake import FakeImageEncoder, FakeTextEncoder
from shoplens.fuse.colour import DIM, colour_histogram


@pytest.fixture()
def cache(tmp_path: Path) -> Iterator[EmbeddingCache]:
    c = EmbeddingCache(tmp_path / "emb.sqlite")
    yield c
    c.close()


@pytest.fixture()
def photos(tmp_path: Path) -> list[str]:
    rng = np.random.default_rng(0)
    refs = []
    for i in range(7):
        arr = rng.integers(0, 256, (30 + i, 20 + 2 * i, 3), dtype=np.uint8)
        path = tmp_path / f"p{i}.png"
        Image.fromarray(arr).save(path)
        refs.append(str(path))
    return refs


class Counting(FakeImageEncoder):
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        with self.lock:
            self.count += len(images)
        return super().encode(images)


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = batch.decode_image

    def counted(data: bytes, cfg: object = None) -> Image.Image:
        calls[0] += 1
        return real(data, cfg)  # type: ignore[arg-type]

    monkeypatch.setattr(batch, "decode_image", counted)
    return calls


def test_warm_reencode_decodes_nothing(cache: EmbeddingCache, photos: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    enc = Counting()
    first = encode_images(enc, photos, cache, batch_size=3, workers=2)
    decodes = count_decodes(monkeypatch)
    again = encode_images(enc, photos, cache, batch_size=2)
    assert decodes[0] == 0 and again.encoded == 0 and enc.count == len(photos)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    np.testing.assert_array_equal(again.aux["colour"], first.aux["colour"])


def test_missing_colour_is_computed_without_the_model(cache: EmbeddingCache, photos: list[str]) -> None:
    enc = Counting()
    first = encode_images(enc, photos, cache)
    cache._db.execute("DELETE FROM emb WHERE model = 'hsv-hist-114-v1'")
    again = encode_images(enc, photos, cache)
    assert again.encoded == 0 and enc.count == len(photos)
    np.testing.assert_array_equal(again.aux["colour"], first.aux["colour"])


def test_same_photo_twice_is_encoded_once(photos: list[str], tmp_path: Path) -> None:
    copy = tmp_path / "copy.png"
    copy.write_bytes(Path(photos[0]).read_bytes())
    enc = Counting()
    res = encode_images(enc, [photos[0], str(copy), photos[1], photos[0]], batch_size=2, workers=2)
    assert res.ok == [0, 1, 2, 3] and res.encoded == 2 and enc.count == 2
    np.testing.assert_array_equal(res.vectors[0], res.vectors[1])
    np.testing.assert_array_equal(res.vectors[0], res.vectors[3])


def test_results_do_not_depend_on_workers_or_batch_size(photos: list[str]) -> None:
    refs = photos + [photos[2], "/nonexistent/x.jpg"]
    one = encode_images(FakeImageEncoder(), refs, batch_size=1, workers=1)
    many = encode_images(FakeImageEncoder(), refs, batch_size=3, workers=3)
    assert one.ok == many.ok == list(range(len(photos) + 1))
    assert set(one.failed) == set(many.failed) == {len(refs) - 1}
    np.testing.assert_array_equal(one.vectors, many.vectors)
    np.testing.assert_array_equal(one.aux["colour"], many.aux["colour"])


def test_a_cached_photo_that_stops_decoding_fails(cache: EmbeddingCache, photos: list[str], tmp_path: Path) -> None:
    encode_images(FakeImageEncoder(), photos[:1], cache)
    cache._db.execute("DELETE FROM emb WHERE model = 'hsv-hist-114-v1'")
    res = encode_images(FakeImageEncoder(), photos[:1], cache, ingest=IngestConfig(max_image_pixels=10))
    assert res.ok == [] and set(res.failed) == {0} and res.vectors.shape == (0, FakeImageEncoder.dim)


def test_parallel_text_batches_match_sequential(cache: EmbeddingCache) -> None:
    texts = [f"product {i} " + "word " * (i % 7) for i in range(50)] + ["product 3 word word word "]
    seq, n1 = encode_texts(FakeTextEncoder(), texts, batch_size=4, workers=1)
    par, n2 = encode_texts(FakeTextEncoder(), texts, cache, batch_size=4, workers=3)
    assert n1 == n2 == 50
    np.testing.assert_array_equal(seq, par)
    again, n3 = encode_texts(FakeTextEncoder(), texts, cache, batch_size=4, workers=3)
    assert n3 == 0
    np.testing.assert_array_equal(again, seq)


def test_model_workers() -> None:
    class Single:
        batch_threads = 1

    class Double:
        batch_threads = 2

    assert model_workers(FakeImageEncoder(), threads=8) == 1  # no claim of thread safety: one at a time
    assert model_workers(Single(), threads=4) == 4
    assert model_workers(Double(), threads=4) == 2
    assert model_workers(Double(), threads=1) == 1
    assert model_workers(Single()) >= 1


# --- preprocessing ------------------------------------------------------------------------------


def reference_preprocess(images: Sequence[Image.Image], size: int = 224) -> np.ndarray:
    """The original recipe: resize the whole photo, crop the centre, convert per photo."""
    out = np.empty((len(images), 3, size, size), np.float32)
    for i, img in enumerate(images):
        w, h = img.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        im = img.convert("RGB").resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = (nw - size) // 2, (nh - size) // 2
        im = im.crop((left, top, left + size, top + size))
        out[i] = (np.asarray(im, np.float32).transpose(2, 0, 1) - MEAN) / STD
    return out


@pytest.mark.parametrize("shape", [(225, 300), (300, 225), (224, 224), (150, 200), (1000, 700), (60, 40)])
def test_preprocess_matches_resize_then_crop(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (shape[1], shape[0], 3), dtype=np.uint8))
    got, want = preprocess([img, img.convert("L")]), reference_preprocess([img, img.convert("L")])
    assert got.shape == want.shape == (2, 3, 224, 224) and got.dtype == np.float32
    # Resizing straight into the crop rounds a few pixels the other way: at most one 8-bit step.
    assert np.abs(got - want).max() <= 1 / STD + 1e-6
    assert (got != want).mean() < 0.02


def test_preprocess_scales_to_minus_one_one() -> None:
    black, white = Image.new("RGB", (300, 300), 0), Image.new("RGB", (300, 300), (255, 255, 255))
    x = preprocess([black, white])
    assert np.all(x[0] == -127 / 128) and np.all(x[1] == 1.0)  # (0 - 127) / 128, (255 - 127) / 128
    assert preprocess([]).shape == (0, 3, 224, 224)


# --- colour histogram ---------------------------------------------------------------------------


def test_colour_histogram_of_solid_colours_by_hand() -> None:
    # Pure red: HSV (0, 255, 255) → hue bin 0, saturation bin 2, value bin 2 → bin 0·9 + 2·3 + 2 = 8.
    red = colour_histogram(Image.new("RGB", (40, 30), (255, 0, 0)))
    assert red.shape == (DIM,) and red[8] == pytest.approx(1.0) and red.sum() == pytest.approx(1.0)
    # All white is all "background", so every pixel counts: grey, value bin 5 → bin 108 + 5.
    white = colour_histogram(Image.new("RGB", (40, 30), (255, 255, 255)))
    assert white[113] == pytest.approx(1.0)
    # Mid grey (128): saturation 0 → grey bins; value 128 → 128·6 >> 8 = 3 → bin 111.
    grey = colour_histogram(Image.new("L", (40, 30), 128))
    assert grey[111] == pytest.approx(1.0)


def test_colour_histogram_ignores_the_white_background() -> None:
    img = Image.new("RGB", (64, 64), (255, 255, 255))
    img.paste(Image.new("RGB", (32, 32), (0, 0, 255)), (16, 16))
    h = colour_histogram(img)
    # Pure blue: hue 170/256·12 → bin 7, saturation and value bins 2 → 7·9 + 8 = 71, plus a little
    # of the blurred edge; the white background adds nothing to the light grey bin.
    assert int(np.argmax(h)) == 71 and h[113] == 0.0
    assert float((h**2).sum()) == pytest.approx(1.0, abs=1e-5)  # Hellinger: squares sum to one


# --- build stage timings --------------------------------------------------------------------------


def test_build_logs_its_stage_times(tmp_path: Path, fake_config: object, tiny_catalog: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from shoplens import Engine
    from shoplens.index.build import StageClock

    clock = StageClock()
    clock.lap("a")
    clock.lap("a")
    assert list(clock.seconds) == ["a"] and clock.seconds["a"] >= 0.0  # laps of one stage add up
    with caplog.at_level(logging.INFO, logger="shoplens.index.build"):
        Engine(tmp_path / "idx", fake_config).add_catalog(tiny_catalog)  # type: ignore[arg-type]
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("build stages"))
    for stage in ("photos=", "text=", "tags=", "align=", "save=", "publish="):
        assert stage in line
