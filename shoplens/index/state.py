"""One generation of an index, loaded: products, per-modality vectors, the BM25 index."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np

from ..config import Config
from ..encode.base import l2_normalize
from ..errors import IndexError_
from ..fuse.align import AlignModel
from ..types import Product
from .atomic import write_json
from .lexical import LexicalIndex
from .vectors import VectorIndex

log = logging.getLogger(__name__)


_PRODUCT_LINES = msgspec.json.Decoder(Product)
_ENCODER = msgspec.json.Encoder()


def write_products(path: Path, products: Sequence[Product]) -> None:
    """The product list as JSON lines (one ``Product.to_dict`` object per line, UTF-8)."""
    with path.open("wb") as fh:
        try:
            for start in range(0, len(products), 10_000):
                # A dataclass encodes as the same object as ``to_dict`` (the fields in order).
                fh.write(_ENCODER.encode_lines(products[start : start + 10_000]))
            return
        except TypeError as e:  # a value msgspec cannot encode (e.g. a custom Mapping type)
            log.debug("%s: fast product encoding failed (%s); writing it with json", path, e)
            fh.seek(0)
            fh.truncate()
        for p in products:
            fh.write((json.dumps(p.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))


def read_products(path: Path) -> list[Product]:
    """Read ``write_products``'s file: msgspec decodes the lines straight into ``Product``s (1M
    products in ~4 s instead of ~19 s with json + ``from_dict``); a file it rejects (written by
    hand, or by an older shoplens with other value types) is read leniently with ``from_dict``."""
    data = path.read_bytes()
    try:
        products: list[Product] = _PRODUCT_LINES.decode_lines(data)
        return products
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        log.debug("%s: strict product decoding failed (%s); reading it with json", path, e)
    return [Product.from_dict(json.loads(line)) for line in data.decode("utf-8").splitlines() if line.strip()]


FORMAT_VERSION = 1
LEGACY_IMAGE_SIZE = 224  # encode.image_size of indexes whose config predates the setting
FREEZE_PRODUCTS = 100_000  # indexes this big are moved out of the cyclic GC's sight once loaded


class LazyRows(Sequence[Any]):
    """A per-product value computed on first access and kept (``facet_items`` of 1M products would
    otherwise cost seconds and ~1 KB each at the first query, though a query reads a few hundred)."""

    def __init__(self, products: Sequence[Product], fn: Callable[[Product], Any]) -> None:
        self._products, self._fn = products, fn
        self._values: list[Any] = [None] * len(products)

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        v = self._values[i]
        if v is None:  # benign race: two threads may compute the same value
            v = self._values[i] = self._fn(self._products[i])
        return v

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))


@dataclass
class IndexState:
    """Everything a search needs; replaced as a whole on every write, so readers never see a mix."""

    config: Config
    products: list[Product]
    text_vectors: np.ndarray  # N × dt, zero rows where a product has no text
    has_text: np.ndarray  # N bool
    image_vectors: np.ndarray  # M × di, one row per photo
    image_owner: np.ndarray  # M int: product row of each photo
    image_refs: list[str]  # M: the photo each row came from
    image_aux: dict[str, np.ndarray]  # per-photo side outputs: "colour" (M × 114), "probs" (M × 32)
    lexical: LexicalIndex
    text_model: str
    image_model: str
    align: AlignModel | None = None
    tag_vectors: np.ndarray | None = None  # N × d_text: zero-shot tag text of photo-only products
    # N float64: when each product was first added (unix seconds; an update keeps the date).
    # None for indexes written before it was recorded.
    added: np.ndarray | None = None
    path: Path | None = None
    id_to_row: dict[str, int] = field(default_factory=dict)
    _text_index: VectorIndex | None = None
    _image_index: VectorIndex | None = None
    _product_image: np.ndarray | None = None
    _facets: LazyRows | None = None
    _derived: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id_to_row:
            self.id_to_row = {p.id: i for i, p in enumerate(self.products)}

    @property
    def n(self) -> int:
        return len(self.products)

    @property
    def text_index(self) -> VectorIndex:
        """Dense text search over products with text (photo-only ones are reached by ``xmodal_index``)."""
        if self._text_index is None:
            rows = np.flatnonzero(self.has_text)
            # Every product has text (the usual case): search the memory-mapped array itself
            # rather than a RAM copy (2 GB at 1M × 512); otherwise copy the rows with text.
            vectors = self.text_vectors if len(rows) == self.n else np.asarray(self.text_vectors)[rows]
            ann = VectorIndex.load_ann(self.path / "text.hnsw") if self.path else None
            self._text_index = VectorIndex(vectors, rows, self.n, self.config.index, ann)
        return self._text_index

    @property
    def product_colour(self) -> np.ndarray | None:
        if "colour" not in self.image_aux:
            return None
        if "product_colour" not in self._derived:
            from ..fuse.bridge import product_means

            self._derived["product_colour"] = product_means(np.asarray(self.image_aux["colour"]), self.image_owner, self.n)
        return self._derived["product_colour"]

    @property
    def shared_space(self) -> bool:
        """True when text and image vectors come from one joint model (a CLIP text and image tower
        on the same weights): then no learned alignment is needed to cross modalities."""
        t, i = self.text_model, self.image_model
        return t.startswith("clip-text:") and i.startswith("clip-image-") and t.split(":", 1)[1] == i.split(":", 1)[1]

    @property
    def image_in_text(self) -> np.ndarray | None:
        """N × d_text: each product's photos projected into the text space (zero rows without photos)."""
        head = self.align is not None and self.align.text_image is not None
        if not head:
            if self.shared_space:  # CLIP-like encoders: photos already live in the text space
                proj = np.zeros_like(np.asarray(self.text_vectors))
                targets = self.has_image & ~self.has_text
                proj[targets] = self.product_image_vectors[targets]
                return proj
            if self.tag_vectors is None or not self.tag_vectors.any():
                return None
            return np.asarray(self.tag_vectors)  # the zero-shot bridge, before any head is trained
        assert self.align is not None
        if "image_in_text" not in self._derived:
            from ..fuse.align import knn_transfer

            # Only photo-only products need a bridge (the others are reached by their own text).
            targets = np.flatnonzero(self.has_image & ~self.has_text)
            if not len(targets):
                self._derived["image_in_text"] = None
                return None
            pim = self.product_image_vectors
            colour = self.product_colour
            x = self.align.image_inputs(pim[targets], colour[targets] if colour is not None else None)
            proj = np.zeros((self.n, np.asarray(self.text_vectors).shape[1]), np.float32)
            proj[targets] = self.align.project(x)
            # Third bridge: borrow the text vectors of the most similar-looking products with text.
            gallery = np.flatnonzero(self.has_image & self.has_text)
            w_knn = self.align.weights[2]
            if len(gallery) and w_knn > 0:
                knn = knn_transfer(pim[targets], pim[gallery], np.asarray(self.text_vectors)[gallery])
                proj[targets] = l2_normalize(proj[targets] + w_knn * knn)
                w = self.config.align.tags_weight_with_head
                if w > 0 and self.tag_vectors is not None:
                    proj[targets] = l2_normalize(proj[targets] + w * np.asarray(self.tag_vectors)[targets])
            self._derived["image_in_text"] = proj
        return self._derived["image_in_text"]

    @property
    def xmodal_index(self) -> VectorIndex | None:
        """Text query → photo-only products, through the text–image head (the missing modality).

        Products with text are left out: measured on the fashion dev set, adding their photos to
        text queries lowered catalogue-word queries (nDCG@10 0.931 → 0.907)."""
        proj = self.image_in_text
        if proj is None:
            return None
        if "xmodal_index" not in self._derived:
            rows = np.flatnonzero(self.has_image & ~self.has_text)
            self._derived["xmodal_index"] = VectorIndex(proj[rows], rows, self.n, self.config.index)
        return self._derived["xmodal_index"]

    @property
    def text_only_index(self) -> VectorIndex:
        """Text-only products' vectors: a photo query reaches them through the text–image head."""
        if "text_only_index" not in self._derived:
            rows = np.flatnonzero(self.has_text & ~self.has_image)
            self._derived["text_only_index"] = VectorIndex(np.asarray(self.text_vectors)[rows], rows, self.n, self.config.index)
        return self._derived["text_only_index"]

    @property
    def photo_index(self) -> VectorIndex | None:
        """Photo query → products through the learned photo–photo head (max over each product's photos)."""
        if self.align is None or self.align.photo is None or self.image_vectors.shape[0] == 0:
            return None
        if "photo_index" not in self._derived:
            z = self.align.photo.apply(np.asarray(self.image_vectors))
            self._derived["photo_index"] = VectorIndex(z, self.image_owner, self.n, self.config.index)
        return self._derived["photo_index"]

    @property
    def image_index(self) -> VectorIndex:
        if self._image_index is None:
            ann = VectorIndex.load_ann(self.path / "image.hnsw") if self.path else None
            self._image_index = VectorIndex(self.image_vectors, self.image_owner, self.n, self.config.index, ann)
        return self._image_index

    @property
    def product_image_vectors(self) -> np.ndarray:
        """N × di: the normalised mean of each product's photos (zero where it has none)."""
        if self._product_image is None:
            owner = np.asarray(self.image_owner)
            if len(owner) == self.n and np.array_equal(owner, np.arange(self.n)):
                # One photo per product, in product order: the mean of one unit (or zero) vector is
                # itself, so the (memory-mapped) photo matrix serves as is (5 GB saved at 1M).
                self._product_image = self.image_vectors
                return self._product_image
            dim = self.image_vectors.shape[1] if self.image_vectors.ndim == 2 else 0
            acc = np.zeros((self.n, dim), np.float32)
            np.add.at(acc, self.image_owner, self.image_vectors)
            norms = np.linalg.norm(acc, axis=1, keepdims=True)
            self._product_image = np.divide(acc, norms, out=np.zeros_like(acc), where=norms > 0)
        return self._product_image

    @property
    def facet_items(self) -> Sequence[list[tuple[str, str]]]:
        """Per product, its facetable (field, value) pairs (each computed on first use, then kept)."""
        if self._facets is None:
            from ..retrieve.filters import facet_items

            self._facets = LazyRows(self.products, facet_items)
        return self._facets

    @property
    def columns(self) -> Any:
        """Per-field value columns for vectorised filters (``retrieve.filters.ColumnStore``)."""
        if "columns" not in self._derived:
            from ..retrieve.filters import ColumnStore

            self._derived["columns"] = ColumnStore(self.products)
        return self._derived["columns"]

    @property
    def has_image(self) -> np.ndarray:
        """N bool: products with at least one photo (computed once per generation)."""
        mask = self._derived.get("has_image")
        if mask is None:
            mask = np.zeros(self.n, bool)
            mask[self.image_owner] = True
            mask.setflags(write=False)
            self._derived["has_image"] = mask
        return mask

    def _save_facets(self, folder: Path) -> None:
        """The facet columns (``facets.json`` + ``facet_codes.npy``, N × fields int32): a reader
        maps them instead of building them from every product at its first query (~5 s at 1M)."""
        fields, columns = self.columns.facet_table()
        codes = np.zeros((self.n, len(fields)), np.int32)
        for j, name in enumerate(fields):
            codes[:, j] = columns[name][0]
        np.save(folder / "facet_codes.npy", codes)
        write_json(folder / "facets.json", {"fields": fields, "labels": [columns[f][1] for f in fields]})

    def _load_facets(self, folder: Path, mode: Literal["r"] | None) -> None:
        meta_path, codes_path = folder / "facets.json", folder / "facet_codes.npy"
        if not (meta_path.is_file() and codes_path.is_file()):
            return  # an index written before facet columns were stored: built at first use
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        fields, labels = list(meta["fields"]), list(meta["labels"])
        codes = np.load(codes_path, mmap_mode=mode)
        if codes.shape != (self.n, len(fields)) or len(labels) != len(fields):
            raise ValueError(f"facet columns {codes.shape} do not match {self.n} products × {len(fields)} fields")
        self.columns.seed_facets(fields, {f: (codes[:, j], list(labels[j])) for j, f in enumerate(fields)})

    def save(self, folder: Path) -> None:
        """Write every array and the product list into ``folder`` (the lexical index is already there)."""
        np.save(folder / "text.npy", np.ascontiguousarray(self.text_vectors, np.float32))
        np.save(folder / "has_text.npy", self.has_text.astype(bool))
        np.save(folder / "image.npy", np.ascontiguousarray(self.image_vectors, np.float32))
        np.save(folder / "image_owner.npy", self.image_owner.astype(np.int64))
        write_products(folder / "products.jsonl", self.products)
        if self.added is not None:
            np.save(folder / "added.npy", np.asarray(self.added, np.float64))
        if self.tag_vectors is not None and self.tag_vectors.any():
            np.save(folder / "tag_text.npy", np.ascontiguousarray(self.tag_vectors, np.float32))
        for name, arr in self.image_aux.items():
            np.save(folder / f"image_{name}.npy", np.ascontiguousarray(arr, np.float32))
        with (folder / "image_refs.json").open("w", encoding="utf-8") as fh:
            json.dump(self.image_refs, fh, ensure_ascii=False)
        self._save_facets(folder)
        if self.align is not None:
            self.align.save(folder / "align")
        self.text_index.save_ann(folder / "text.hnsw")
        self.image_index.save_ann(folder / "image.hnsw")
        write_json(folder / "config.json", self.config.to_dict())
        write_json(folder / "manifest.json", self.manifest())

    def manifest(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "format_version": FORMAT_VERSION,
            "shoplens_version": __version__,
            "products": self.n,
            "with_text": int(self.has_text.sum()),
            "with_image": int(self.has_image.sum()),
            "photos": int(self.image_vectors.shape[0]),
            "text_model": self.text_model,
            "text_dim": int(self.text_vectors.shape[1]),
            "image_model": self.image_model,
            "image_dim": int(self.image_vectors.shape[1]),
            "lexical_docs": self.lexical.num_docs(),
            "align": self.align.reports if self.align is not None else None,
        }

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> IndexState:
        """Open a generation folder (arrays memory-mapped unless ``mmap`` is False)."""
        # Millions of small objects (products, the id map): with the cyclic GC on, its collections
        # would traverse them again and again while they are created (~2 s at 1M products).
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            state = cls._load(folder, mmap)
        finally:
            if gc_was_on:
                gc.enable()
        if state.n >= FREEZE_PRODUCTS:
            # Move what exists now out of the collector's sight: otherwise every full collection
            # of a serving process traverses the whole catalogue (2.5 s at 1M products, a stall of
            # every query in flight). The products hold no reference cycles, so reference counting
            # still frees them when a newer generation replaces this one.
            gc.freeze()
        return state

    @classmethod
    def _load(cls, folder: Path, mmap: bool) -> IndexState:
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            raw_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            if isinstance(raw_config, dict) and isinstance(raw_config.get("encode"), dict):
                # Indexes written before encode.image_size existed hold photos encoded at 224; those
                # written before encode.query_image_size / plain_image_size encoded every photo,
                # queries included, at that one side.
                raw_config["encode"].setdefault("image_size", LEGACY_IMAGE_SIZE)
                raw_config["encode"].setdefault("query_image_size", raw_config["encode"]["image_size"])
                raw_config["encode"].setdefault("plain_image_size", 0)
            config = Config.from_dict(raw_config)
        except (OSError, json.JSONDecodeError) as e:
            raise IndexError_(f"{folder}: unreadable index metadata: {e}") from e
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexError_(
                f"{folder}: index format {manifest.get('format_version')} is not supported "
                f"(this shoplens reads format {FORMAT_VERSION}); rebuild it with `shoplens index`"
            )
        mode: Literal["r"] | None = "r" if mmap else None
        try:
            products = read_products(folder / "products.jsonl")
            refs = json.loads((folder / "image_refs.json").read_text(encoding="utf-8"))
            aux = {
                name: np.load(folder / f"image_{name}.npy", mmap_mode=mode)
                for name in ("colour", "probs")
                if (folder / f"image_{name}.npy").is_file()
            }
            state = cls(
                config=config,
                products=products,
                text_vectors=np.load(folder / "text.npy", mmap_mode=mode),
                has_text=np.load(folder / "has_text.npy"),
                image_vectors=np.load(folder / "image.npy", mmap_mode=mode),
                image_owner=np.load(folder / "image_owner.npy"),
                image_refs=refs,
                image_aux=aux,
                lexical=LexicalIndex(folder / "bm25"),
                text_model=manifest["text_model"],
                image_model=manifest["image_model"],
                align=AlignModel.load(folder / "align") if (folder / "align" / "align.json").is_file() else None,
                tag_vectors=np.load(folder / "tag_text.npy") if (folder / "tag_text.npy").is_file() else None,
                added=np.load(folder / "added.npy") if (folder / "added.npy").is_file() else None,
                path=folder,
            )
            state._load_facets(folder, mode)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise IndexError_(f"{folder}: incomplete or corrupt index: {e}") from e
        if (
            state.text_vectors.shape[0] != state.n
            or state.image_owner.shape[0] != state.image_vectors.shape[0]
            or (state.added is not None and state.added.shape[0] != state.n)
        ):
            raise IndexError_(f"{folder}: arrays do not match the product list; rebuild the index")
        return state
