"""Build the bundled demo catalogue (shoplens/data/demo) from the MIT-licensed Grocery Store Dataset.

Usage: python scripts/make_demo_data.py ../shared/data/grocery
Takes every product's studio ("iconic") photo, two of its shop photos from the train split as extra
photos, and a few photos from the validation split as demo photo queries; photos are downscaled to
320 px so the bundle stays small.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

from PIL import Image

OUT = Path(__file__).resolve().parents[1] / "shoplens" / "data" / "demo"
SIDE = 320
SHOP_PHOTOS = 2
QUERY_CLASSES = ["Granny-Smith", "Oatly-Oat-Milk", "Banana", "Red-Bell-Pepper", "Arla-Standard-Milk", "Lemon"]


def shrink(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    img = Image.open(src).convert("RGB")
    img.thumbnail((SIDE, SIDE))
    img.save(dst, quality=85)


def main(src: Path) -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "images").mkdir(parents=True)
    shutil.copy(src / "LICENSE", OUT / "LICENSE")
    train: dict[str, list[str]] = {}
    for line in (src / "dataset" / "train.txt").read_text().splitlines():
        path, fine, _coarse = (x.strip() for x in line.split(","))
        train.setdefault(fine, []).append(path)
    val: dict[str, list[str]] = {}
    for line in (src / "dataset" / "val.txt").read_text().splitlines():
        path, fine, _coarse = (x.strip() for x in line.split(","))
        val.setdefault(path.split("/")[-2], []).append(path)
    rows = list(csv.DictReader((src / "catalog.csv").open(encoding="utf-8")))
    with (OUT / "catalog.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "description", "image", "images", "category", "top_category"])
        for r in rows:
            pid = r["id"]
            main_rel = f"images/{pid}-studio.jpg"
            shrink(src / r["image"], OUT / main_rel)
            extra = []
            for n, path in enumerate(train.get(pid, [])[:SHOP_PHOTOS]):
                rel = f"images/{pid}-shop{n + 1}.jpg"
                shrink(src / "dataset" / path, OUT / rel)
                extra.append(rel)
            w.writerow([pid, r["title"], r["description"], main_rel, "|".join(extra), r["category"], r["top_category"]])
    for cls in QUERY_CLASSES:
        if cls in val:
            shrink(src / "dataset" / val[cls][0], OUT / "queries" / f"shelf-{cls.lower()}.jpg")
    print(f"wrote {len(rows)} products to {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
