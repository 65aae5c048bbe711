"""Safe image loading: path containment, URL limits, size and decompression-bomb guards, EXIF, modes."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..config import IngestConfig
from ..errors import ImageError, ImageTooLargeError, RowError, UnsupportedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"}


def is_url(ref: str) -> bool:
    return ref.lower().startswith(("http://", "https://"))


def resolve_image_ref(ref: str, base: Path | None, row: int, field: str, check_exists: bool = True) -> str:
    """A URL as is, or a local path made absolute; relative paths may not leave the catalogue folder."""
    if "\x00" in ref:  # no file system accepts it (os.stat raises ValueError, not OSError)
        raise RowError(row, field, f"image reference {ref[:80]!r} contains a NUL character")
    if "://" in ref:
        if not is_url(ref):
            raise RowError(row, field, f"only http(s) URLs are allowed, got {ref[:80]!r}")
        return ref
    p = Path(ref)
    if not p.is_absolute():
        if base is None:
            raise RowError(row, field, f"relative image path {ref!r} without a catalogue folder")
        p = (base / p).resolve()
        if not p.is_relative_to(base):
            raise RowError(row, field, f"image path {ref!r} leaves the catalogue folder")
    if check_exists and not p.is_file():
        raise RowError(row, field, f"image file not found: {ref}")
    return str(p)


def load_image_bytes(ref: str, cfg: IngestConfig | None = None) -> bytes:
    """Read a photo's bytes from a local path or an http(s) URL, within the byte limit."""
    cfg = cfg or IngestConfig()
    if is_url(ref):
        if not cfg.allow_urls:
            raise ImageError(f"image URLs are disabled: {ref[:120]}")
        req = urllib.request.Request(ref, headers={"User-Agent": "shoplens/0.1"})
        try:
            with urllib.request.urlopen(req, timeout=cfg.url_timeout_s) as resp:  # noqa: S310 - scheme checked
                data: bytes = resp.read(cfg.max_image_bytes + 1)
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as e:
            raise ImageError(f"cannot fetch {ref[:120]}: {e}") from e
    else:
        p = Path(ref)
        try:
            size = p.stat().st_size
        except (OSError, ValueError) as e:  # ValueError: a NUL character in the path
            raise ImageError(f"image file not found: {ref[:200]!r}") from e
        if size > cfg.max_image_bytes:
            raise ImageTooLargeError(f"image {ref} is {size} bytes, over the {cfg.max_image_bytes} limit")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise ImageError(f"cannot read {ref}: {e}") from e
    if len(data) > cfg.max_image_bytes:
        raise ImageTooLargeError(f"image {ref[:120]} is over the {cfg.max_image_bytes}-byte limit")
    if not data:
        raise ImageError(f"image {ref[:120]} is empty")
    return data


def decode_image(data: bytes, cfg: IngestConfig | None = None) -> Image.Image:
    """Decode image bytes to an RGB PIL image, checked by content (not by name) and size-limited."""
    cfg = cfg or IngestConfig()
    if len(data) > cfg.max_image_bytes:
        raise ImageTooLargeError(f"image is {len(data)} bytes, over the {cfg.max_image_bytes} limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise UnsupportedImageError(f"unsupported image format {img.format}")
            w, h = img.size
            if w < 1 or h < 1:
                raise ImageError("image has no pixels")
            if w > cfg.max_image_side or h > cfg.max_image_side or w * h > cfg.max_image_pixels:
                raise ImageTooLargeError(f"image is {w}x{h} pixels, over the size limit")
            if isinstance(img, ImageFile.ImageFile):
                img.draft("RGB", (448, 448))  # JPEG: decode at reduced scale, much faster for big photos
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of every upright photo
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(f"image rejected as a decompression bomb: {e}") from e
    except UnidentifiedImageError as e:
        raise UnsupportedImageError("the data is not a recognised image") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"corrupt or truncated image: {e}") from e
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB on a white background for transparent images; greyscale and palette images expanded."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.split()[-1])
        return bg
    return img.convert("RGB")
