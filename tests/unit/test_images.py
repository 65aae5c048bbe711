"""Safe image loading (shoplens.ingest.images): decoding guards, modes, EXIF, size limits, path checks."""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from shoplens.config import IngestConfig
from shoplens.errors import ImageError, ImageTooLargeError, RowError, UnsupportedImageError
from shoplens.ingest.images import decode_image, load_image_bytes, resolve_image_ref, to_rgb


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def noisy_jpeg(size: tuple[int, int] = (64, 64)) -> bytes:
    """A JPEG of seeded random pixels: many bytes of entropy-coded data, the same on every run."""
    pixels = random.Random(7).randbytes(size[0] * size[1] * 3)
    return encode(Image.frombytes("RGB", size, pixels), "JPEG", quality=90)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header declares width×height RGB pixels (no pixel data)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


# --- decode_image: good inputs -----------------------------------------------------------------


def test_decode_jpeg_to_rgb() -> None:
    img = decode_image(encode(Image.new("RGB", (30, 20), (10, 120, 250)), "JPEG", quality=95))
    assert img.mode == "RGB" and img.size == (30, 20)
    assert img.getpixel((15, 10)) == pytest.approx((10, 120, 250), abs=4)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_decode_other_allowed_formats(fmt: str) -> None:
    img = decode_image(encode(Image.new("RGB", (12, 9), (0, 0, 255)), fmt))
    assert img.mode == "RGB" and img.size == (12, 9)


def test_png_with_alpha_gets_a_white_background() -> None:
    rgba = Image.new("RGBA", (4, 2), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black → white
    rgba.putpixel((1, 0), (0, 0, 255, 128))  # half transparent blue over white → (127, 127, 255)
    img = decode_image(encode(rgba, "PNG"))
    assert img.mode == "RGB" and img.size == (4, 2)
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((1, 0)) == pytest.approx((127, 127, 255), abs=1)
    assert img.getpixel((3, 1)) == (255, 0, 0)


def test_greyscale_images_become_rgb() -> None:
    assert decode_image(encode(Image.new("L", (5, 5), 77), "PNG")).getpixel((2, 2)) == (77, 77, 77)
    la = Image.new("LA", (2, 1), (10, 255))
    la.putpixel((1, 0), (10, 0))  # transparent → white
    img = decode_image(encode(la, "PNG"))
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (10, 10, 10) and img.getpixel((1, 0)) == (255, 255, 255)


def test_palette_images_become_rgb() -> None:
    pal = Image.new("RGB", (3, 3), (0, 200, 0)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    img = decode_image(encode(pal, "PNG"))
    assert img.mode == "RGB" and img.getpixel((1, 1)) == (0, 200, 0)


def test_palette_with_transparency_gets_a_white_background() -> None:
    pal = Image.new("P", (2, 1), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    pal.putpixel((1, 0), 1)
    data = encode(pal, "PNG", transparency=1)  # palette index 1 (blue) is transparent
    img = decode_image(data)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (255, 0, 0) and img.getpixel((1, 0)) == (255, 255, 255)


def test_to_rgb_returns_rgb_images_unchanged() -> None:
    img = Image.new("RGB", (2, 2))
    assert to_rgb(img) is img
    assert to_rgb(Image.new("CMYK", (2, 2))).mode == "RGB"


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    img = Image.new("RGB", (40, 20), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red band on the left of the stored image
    out = decode_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.size == (20, 40)  # width and height swapped
    # rotating 90° clockwise moves the stored left edge to the top
    assert out.getpixel((10, 2)) == pytest.approx((255, 0, 0), abs=50)
    assert out.getpixel((10, 37)) == pytest.approx((255, 255, 255), abs=8)


# --- decode_image: bad inputs ------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_jpeg_is_an_image_error(cut: float) -> None:
    data = noisy_jpeg()
    with pytest.raises(ImageError, match="corrupt or truncated") as exc:
        decode_image(data[: int(len(data) * cut)])
    assert not isinstance(exc.value, ImageTooLargeError | UnsupportedImageError)


def test_corrupt_jpeg_header_is_an_image_error() -> None:
    data = bytearray(noisy_jpeg())
    data[2:] = b"\x00" * (len(data) - 2)  # keeps the JPEG magic, destroys the rest
    with pytest.raises(ImageError):
        decode_image(bytes(data))


def test_random_bytes_are_unsupported() -> None:
    data = random.Random(1234).randbytes(4096)
    with pytest.raises(UnsupportedImageError, match="not a recognised image"):
        decode_image(data)


def test_text_file_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"  # the name lies: the content is checked
    path.write_text("id,title\n1,not an image\n", encoding="utf-8")
    with pytest.raises(UnsupportedImageError):
        decode_image(load_image_bytes(str(path)))


def test_disallowed_format_is_unsupported() -> None:
    with pytest.raises(UnsupportedImageError, match="unsupported image format PPM"):
        decode_image(encode(Image.new("RGB", (4, 4)), "PPM"))


def test_decompression_bomb_header_is_rejected_before_decoding() -> None:
    # 50,000 × 50,000 declared in ~60 bytes: PIL's own bomb guard or ours must refuse it
    with pytest.raises(ImageTooLargeError):
        decode_image(png_declaring(50_000, 50_000))


def test_declared_side_over_limit_is_rejected() -> None:
    cfg = IngestConfig(max_image_side=100)
    with pytest.raises(ImageTooLargeError, match="300x10 pixels"):
        decode_image(png_declaring(300, 10), cfg)
    with pytest.raises(ImageTooLargeError, match="10x300 pixels"):
        decode_image(png_declaring(10, 300), cfg)


def test_pixel_count_over_limit_is_rejected() -> None:
    cfg = IngestConfig(max_image_pixels=10_000)
    with pytest.raises(ImageTooLargeError, match="101x100 pixels"):
        decode_image(encode(Image.new("RGB", (101, 100)), "PNG"), cfg)
    assert decode_image(encode(Image.new("RGB", (100, 100)), "PNG"), cfg).size == (100, 100)  # at the limit


def test_bytes_over_limit_are_rejected() -> None:
    data = noisy_jpeg()
    with pytest.raises(ImageTooLargeError, match=f"{len(data)} bytes"):
        decode_image(data, IngestConfig(max_image_bytes=len(data) - 1))
    assert decode_image(data, IngestConfig(max_image_bytes=len(data))).size == (64, 64)


# --- load_image_bytes --------------------------------------------------------------------------


def test_load_image_bytes_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(noisy_jpeg())
    assert load_image_bytes(str(path)) == path.read_bytes()


def test_load_image_bytes_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="image file not found") as exc:
        load_image_bytes(str(tmp_path / "nope.jpg"))
    assert type(exc.value) is ImageError


def test_load_image_bytes_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="is empty"):
        load_image_bytes(str(path))


def test_load_image_bytes_over_the_byte_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff\xd8" + b"\x00" * 2000)
    with pytest.raises(ImageTooLargeError, match="2002 bytes, over the 1000 limit"):
        load_image_bytes(str(path), IngestConfig(max_image_bytes=1000))


def test_load_image_bytes_urls_disabled_fails_without_network() -> None:
    with pytest.raises(ImageError, match="image URLs are disabled"):
        load_image_bytes("https://example.com/a.jpg", IngestConfig(allow_urls=False))


# --- resolve_image_ref -------------------------------------------------------------------------


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    base = (tmp_path / "cat").resolve()
    (base / "img").mkdir(parents=True)
    (base / "img" / "a.jpg").write_bytes(b"x")
    (tmp_path / "secret.jpg").write_bytes(b"x")
    return base


def test_resolve_relative_path_inside_the_folder(folder: Path) -> None:
    assert resolve_image_ref("img/a.jpg", folder, 1, "image") == str(folder / "img" / "a.jpg")
    assert resolve_image_ref("img/../img/a.jpg", folder, 1, "image") == str(folder / "img" / "a.jpg")


def test_resolve_keeps_http_urls(folder: Path) -> None:
    for url in ("http://example.com/a.jpg", "https://example.com/b.jpg", "HTTPS://EXAMPLE.COM/c.jpg"):
        assert resolve_image_ref(url, folder, 1, "image") == url


@pytest.mark.parametrize("ref", ["file:///etc/passwd", "FILE:///etc/passwd", "ftp://example.com/a.jpg",
                                 "data://x", "s3://bucket/a.jpg"])
def test_resolve_rejects_other_schemes(folder: Path, ref: str) -> None:
    with pytest.raises(RowError, match="only http\\(s\\) URLs are allowed") as exc:
        resolve_image_ref(ref, folder, 7, "images")
    assert exc.value.row == 7 and exc.value.field == "images"


@pytest.mark.parametrize("ref", ["../secret.jpg", "img/../../secret.jpg", "../../../../etc/passwd"])
def test_resolve_rejects_paths_leaving_the_folder(folder: Path, ref: str) -> None:
    with pytest.raises(RowError, match="leaves the catalogue folder") as exc:
        resolve_image_ref(ref, folder, 3, "image")
    assert exc.value.row == 3 and exc.value.field == "image"
    assert str(exc.value).startswith("row 3: field 'image': ")


def test_resolve_rejects_a_symlink_pointing_outside(folder: Path) -> None:
    link = folder / "img" / "link.jpg"
    try:
        os.symlink(folder.parent / "secret.jpg", link)
    except OSError:
        pytest.skip("symlinks not available")
    with pytest.raises(RowError, match="leaves the catalogue folder"):
        resolve_image_ref("img/link.jpg", folder, 1, "image")


def test_resolve_missing_file_and_check_exists(folder: Path) -> None:
    with pytest.raises(RowError, match="image file not found: img/nope.jpg"):
        resolve_image_ref("img/nope.jpg", folder, 1, "image")
    unchecked = resolve_image_ref("img/nope.jpg", folder, 1, "image", check_exists=False)
    assert unchecked == str(folder / "img" / "nope.jpg")


def test_resolve_relative_path_without_a_folder(folder: Path) -> None:
    with pytest.raises(RowError, match="without a catalogue folder"):
        resolve_image_ref("img/a.jpg", None, 1, "image")
    absolute = str(folder / "img" / "a.jpg")
    assert resolve_image_ref(absolute, None, 1, "image") == absolute


def test_a_nul_character_in_a_photo_path_is_a_clear_error_not_a_crash(folder: Path) -> None:
    # os.stat raises ValueError (not OSError) for an embedded NUL: it once escaped as a 500 from PUT /products.
    with pytest.raises(RowError, match="NUL character"):
        resolve_image_ref("img/a\x00.jpg", folder, 3, "image")
    with pytest.raises(ImageError, match="image file not found"):
        load_image_bytes("\x00")
