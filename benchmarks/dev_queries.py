"""Write extra judged query sets for a fashion catalogue (gender, colour, article_type columns), in
the spirit of the development queries: catalogue words, English paraphrases, Chinese, and
personalised queries (audience left out of the text, given by a shopping history).

The phrase tables below render queries; the engine never sees them. Qrels follow the development
data's rule: fully relevant (2) = same article type and colour and audience (a Unisex product counts
for men's and women's queries); partly relevant (1) = same article type.

    python benchmarks/dev_queries.py ../shared/data/fashion-dev/catalog.csv --out /tmp/devq [--seed 1]

writes q-{attr,natural,zh,personal}-gen.jsonl and qrels-*-gen.txt. These sets are generated from the
same catalogue as the development queries, so they are development data too, never held-out.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

GENDER_EN = {"Men": ["men", "man", "guys", "gents"], "Women": ["women", "woman", "ladies", "her"], "Boys": ["boys", "a boy"], "Girls": ["girls", "a girl"], "Unisex": ["anyone", "everyone"]}
GENDER_ZH = {"Men": ["男士", "男款", "男式"], "Women": ["女士", "女款", "女式"], "Boys": ["男童", "男孩"], "Girls": ["女童", "女孩"], "Unisex": ["中性", "男女通用"]}
COLOUR_ZH = {
    "Black": ["黑色"], "White": ["白色"], "Blue": ["蓝色"], "Brown": ["棕色", "咖啡色"], "Grey": ["灰色"], "Red": ["红色"],
    "Pink": ["粉色", "粉红色"], "Green": ["绿色"], "Purple": ["紫色"], "Navy Blue": ["藏青色", "深蓝色"], "Silver": ["银色"],
    "Gold": ["金色"], "Yellow": ["黄色"], "Orange": ["橙色"], "Beige": ["米色"], "Olive": ["橄榄绿"], "Maroon": ["酒红色", "栗色"],
    "Cream": ["奶油色"], "Steel": ["钢色"], "Lavender": ["淡紫色"], "Khaki": ["卡其色"], "Off White": ["米白色"], "Charcoal": ["炭灰色"],
    "Peach": ["桃色"], "Mustard": ["芥末黄"], "Teal": ["蓝绿色"],
}
COLOUR_EN = {"Grey": ["grey", "gray"], "Navy Blue": ["navy", "dark blue"], "Maroon": ["burgundy", "wine red"], "Off White": ["ivory"], "Charcoal": ["dark grey"], "Olive": ["olive green"], "Beige": ["sand", "beige"]}
TYPE_ZH = {
    "Tshirts": ["T恤", "短袖T恤"], "Watches": ["手表", "腕表"], "Casual Shoes": ["休闲鞋", "板鞋"], "Sports Shoes": ["运动鞋", "跑鞋"],
    "Shirts": ["衬衫", "衬衣"], "Handbags": ["手提包", "女包"], "Tops": ["上衣", "女式上衣"], "Kurtas": ["印度长衫", "库尔塔长衫"],
    "Heels": ["高跟鞋"], "Sunglasses": ["太阳镜", "墨镜"], "Sandals": ["凉鞋"], "Flip Flops": ["人字拖", "拖鞋"], "Briefs": ["三角裤", "内裤"],
    "Wallets": ["钱包", "皮夹"], "Belts": ["皮带", "腰带"], "Bra": ["文胸", "胸罩"], "Socks": ["袜子"], "Backpacks": ["双肩包", "背包"],
    "Sarees": ["纱丽"], "Earrings": ["耳环", "耳饰"], "Shorts": ["短裤"], "Jeans": ["牛仔裤"], "Dresses": ["连衣裙"], "Trousers": ["长裤", "西裤"],
    "Formal Shoes": ["正装鞋", "皮鞋"], "Flats": ["平底鞋"], "Caps": ["帽子", "棒球帽"], "Tunics": ["束腰上衣"], "Leggings": ["打底裤"],
    "Jackets": ["夹克"], "Skirts": ["裙子", "半身裙"], "Ties": ["领带"], "Track Pants": ["运动裤"], "Clutches": ["手拿包"],
}
TYPE_EN = {
    "Tshirts": ["tee", "tee shirt", "crew neck tee"], "Watches": ["wristwatch", "timepiece"], "Casual Shoes": ["sneakers", "everyday shoes"],
    "Sports Shoes": ["running shoes", "trainers", "athletic shoes"], "Shirts": ["button down shirt", "collared shirt"],
    "Handbags": ["purse", "tote bag", "shoulder bag"], "Tops": ["blouse"], "Kurtas": ["indian tunic", "kurta top"], "Heels": ["pumps", "stilettos"],
    "Sunglasses": ["shades", "eyewear for sun"], "Sandals": ["strappy sandal", "open toe sandals"], "Flip Flops": ["thongs", "beach slippers"],
    "Briefs": ["underpants", "underwear"], "Wallets": ["billfold", "purse for cards"], "Belts": ["waist belt"], "Bra": ["brassiere"],
    "Socks": ["ankle socks", "hosiery"], "Backpacks": ["rucksack", "school bag"], "Earrings": ["ear studs", "ear rings"], "Shorts": ["bermuda", "half pants"],
    "Jeans": ["denims", "denim pants"], "Dresses": ["gown", "frock"], "Trousers": ["pants", "slacks"], "Formal Shoes": ["office shoes", "oxfords"],
    "Flats": ["ballerinas", "ballet flats"], "Caps": ["baseball cap", "hat"], "Leggings": ["tights"], "Jackets": ["coat", "windcheater"],
    "Skirts": ["midi skirt"], "Ties": ["necktie"], "Track Pants": ["joggers", "sweatpants"], "Clutches": ["evening bag"],
}


def judge(rows: list[dict[str, str]], gender: str, colour: str, atype: str) -> dict[str, int]:
    out = {}
    for r in rows:
        if r["article_type"] != atype:
            continue
        g_ok = r["gender"] == gender or (r["gender"] == "Unisex" and gender in ("Men", "Women"))
        out[r["id"]] = 2 if (g_ok and r["colour"] == colour) else 1
    return out


def generate(rows: list[dict[str, str]], seed: int = 1, per_kind: int = 60) -> dict[str, list[tuple[dict[str, object], dict[str, int]]]]:
    """Query sets by kind ("attr", "natural", "zh", "personal"): (query JSON, qrels) pairs."""
    rng = random.Random(seed)
    triples = Counter((r["gender"], r["colour"], r["article_type"]) for r in rows)
    # Triples with at least two fully relevant products, so that nDCG@10 is meaningful.
    usable = sorted(t for t, n in triples.items() if n >= 2)
    rng.shuffle(usable)
    by_gender: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by_gender[r["gender"]].append(r)
    sets: dict[str, list[tuple[dict[str, object], dict[str, int]]]] = defaultdict(list)
    for gender, colour, atype in usable:
        qrels = judge(rows, gender, colour, atype)
        if len(sets["attr"]) < per_kind:
            sets["attr"].append(({"text": f"{gender} {colour} {atype}".lower()}, qrels))
        if atype in TYPE_EN and len(sets["natural"]) < per_kind:
            col = rng.choice(COLOUR_EN.get(colour, [colour.lower()]))
            text = f"{col} {rng.choice(TYPE_EN[atype])} for {rng.choice(GENDER_EN[gender])}"
            sets["natural"].append(({"text": text}, qrels))
        if atype in TYPE_ZH and colour in COLOUR_ZH and len(sets["zh"]) < per_kind:
            text = rng.choice(GENDER_ZH[gender]) + rng.choice(COLOUR_ZH[colour]) + rng.choice(TYPE_ZH[atype])
            sets["zh"].append(({"text": text}, qrels))
        # Personalised: only where the article type exists for another audience too (else the
        # text alone already decides), history = 4 products of the audience, of other types.
        others = {r["gender"] for r in rows if r["article_type"] == atype} - {gender, "Unisex"}
        pool = [r for r in by_gender[gender] if r["article_type"] != atype]
        if gender != "Unisex" and others and len(pool) >= 4 and len(sets["personal"]) < per_kind:
            history = [r["id"] for r in rng.sample(pool, 4)]
            sets["personal"].append(({"text": f"{colour} {atype}".lower(), "history": history}, qrels))
    return sets


# Kinds of shopping history for generate_histories: name → (products of the audience of other types,
# products of the audience of the same type in other colours, products of another audience, newest last).
HISTORY_KINDS = {"4 other kinds": (4, 0, 0), "1 product": (1, 0, 0), "2 of the same kind": (0, 2, 0), "3 + 1 for someone else": (3, 0, 1)}


def generate_histories(rows: list[dict[str, str]], seed: int = 3, per_kind: int = 60) -> dict[str, list[tuple[dict[str, object], dict[str, int]]]]:
    """Personalised queries where the text cannot decide: colour + type sold to another audience
    (not Unisex) too, so only the history says whose. One set per HISTORY_KINDS entry, the same
    queries with different histories, plus "no history"."""
    rng = random.Random(seed)
    triples = Counter((r["gender"], r["colour"], r["article_type"]) for r in rows)
    usable = sorted(t for t, n in triples.items() if n >= 2 and t[0] != "Unisex")
    rng.shuffle(usable)
    sets: dict[str, list[tuple[dict[str, object], dict[str, int]]]] = defaultdict(list)
    for gender, colour, atype in usable:
        if len(sets["no history"]) >= per_kind:
            break
        if not {g for g, c, t in triples if c == colour and t == atype} - {gender, "Unisex"}:
            continue
        other = [r["id"] for r in rows if r["gender"] == gender and r["article_type"] != atype]
        same = [r["id"] for r in rows if r["gender"] == gender and r["article_type"] == atype and r["colour"] != colour]
        elsewhere = [r["id"] for r in rows if r["gender"] not in (gender, "Unisex")]
        if len(other) < 4 or len(same) < 2:
            continue
        text, qrels = f"{colour} {atype}".lower(), judge(rows, gender, colour, atype)
        sets["no history"].append(({"text": text}, qrels))
        for kind, (n_other, n_same, n_elsewhere) in HISTORY_KINDS.items():
            history = rng.sample(other, n_other) + rng.sample(same, n_same) + rng.sample(elsewhere, n_elsewhere)
            sets[kind].append(({"text": text, "history": history}, qrels))
    return sets


# A second, fresh phrasing (other words than the tables above), written for checking changes that
# were made while looking at the sets above; rendered by generate_fresh with another seed.
FRESH_GENDER_EN = {"Men": ["a man", "gentlemen", "him"], "Women": ["a woman", "females", "my wife"], "Boys": ["a young boy", "kids (boys)"], "Girls": ["a young girl", "my daughter"], "Unisex": ["all", "both men and women"]}
FRESH_GENDER_ZH = {"Men": ["男生", "男装", "男人"], "Women": ["女生", "女装", "女人"], "Boys": ["男孩子", "小男孩"], "Girls": ["女孩子", "小女孩"], "Unisex": ["男女同款", "通用款"]}
FRESH_COLOUR_EN = {"Grey": ["slate grey", "ash"], "Navy Blue": ["midnight blue"], "Maroon": ["oxblood"], "Off White": ["eggshell"], "Charcoal": ["graphite"], "Olive": ["army green"], "Beige": ["tan", "camel"], "Cream": ["ivory white"]}
FRESH_COLOUR_ZH = {
    "Black": ["黑", "纯黑色"], "White": ["白", "纯白色"], "Blue": ["蓝", "天蓝色"], "Brown": ["褐色"], "Grey": ["灰", "浅灰色"], "Red": ["红", "大红色"],
    "Pink": ["粉红"], "Green": ["绿"], "Purple": ["紫"], "Navy Blue": ["海军蓝"], "Silver": ["银白色"], "Gold": ["金黄色"], "Yellow": ["黄"],
    "Orange": ["橘色", "橘黄色"], "Beige": ["杏色"], "Olive": ["军绿色"], "Maroon": ["暗红色"], "Cream": ["乳白色"], "Khaki": ["卡其"],
    "Off White": ["象牙白"], "Charcoal": ["深灰色"], "Peach": ["蜜桃色"], "Teal": ["青色"], "Lavender": ["薰衣草紫"], "Mustard": ["姜黄色"], "Steel": ["钢灰色"],
}
FRESH_TYPE_EN = {
    "Tshirts": ["jersey", "crewneck"], "Watches": ["chronograph", "timekeeper"], "Casual Shoes": ["canvas shoes", "plimsolls"],
    "Sports Shoes": ["gym shoes", "sneakers for the gym"], "Shirts": ["dress shirt", "oxford shirt"], "Handbags": ["satchel", "hobo bag"],
    "Tops": ["camisole", "crop top"], "Heels": ["high heels", "stiletto heels"], "Sunglasses": ["sunnies", "aviators"], "Sandals": ["slides", "gladiator sandals"],
    "Flip Flops": ["flip-flops", "thong sandals"], "Briefs": ["knickers", "undies"], "Wallets": ["pocketbook", "coin purse"], "Belts": ["leather belt"],
    "Bra": ["bralette"], "Socks": ["crew socks", "stockings"], "Backpacks": ["knapsack", "daypack"], "Earrings": ["studs", "hoops"],
    "Shorts": ["short pants", "board shorts"], "Jeans": ["skinny jeans", "denim"], "Dresses": ["sundress", "maxi dress"], "Trousers": ["chinos", "trouser pants"],
    "Formal Shoes": ["dress shoes", "brogues"], "Flats": ["flat shoes", "loafers"], "Caps": ["ball cap", "peaked cap"], "Leggings": ["yoga pants"],
    "Jackets": ["bomber jacket", "parka"], "Skirts": ["miniskirt"], "Ties": ["cravat"], "Track Pants": ["track bottoms", "jogging bottoms"], "Clutches": ["clutch purse", "party purse"],
}
FRESH_TYPE_ZH = {
    "Tshirts": ["体恤衫", "圆领T恤"], "Watches": ["石英表", "表"], "Casual Shoes": ["便鞋", "帆布鞋"], "Sports Shoes": ["球鞋", "慢跑鞋"],
    "Shirts": ["长袖衬衫", "衬衫上衣"], "Handbags": ["挎包", "单肩包"], "Tops": ["短上衣"], "Kurtas": ["库尔塔"], "Heels": ["细跟鞋", "尖头高跟鞋"],
    "Sunglasses": ["遮阳镜", "太阳眼镜"], "Sandals": ["罗马凉鞋", "沙滩凉鞋"], "Flip Flops": ["夹脚拖", "沙滩拖鞋"], "Briefs": ["三角内裤"],
    "Wallets": ["钱夹", "卡包"], "Belts": ["裤腰带"], "Bra": ["胸衣", "内衣"], "Socks": ["短袜", "船袜"], "Backpacks": ["书包", "旅行背包"],
    "Earrings": ["耳钉", "耳坠"], "Shorts": ["五分裤", "沙滩裤"], "Jeans": ["牛仔长裤", "丹宁裤"], "Dresses": ["长裙", "裙装"], "Trousers": ["裤子", "休闲裤"],
    "Formal Shoes": ["商务皮鞋", "正装皮鞋"], "Flats": ["平跟鞋", "单鞋"], "Caps": ["鸭舌帽"], "Tunics": ["长款上衣"], "Leggings": ["紧身裤"],
    "Jackets": ["外套", "夹克衫"], "Skirts": ["短裙"], "Ties": ["商务领带"], "Track Pants": ["卫裤", "运动长裤"], "Clutches": ["晚宴包"],
}


def generate_fresh(rows: list[dict[str, str]], seed: int = 11, per_kind: int = 60) -> dict[str, list[tuple[dict[str, object], dict[str, int]]]]:
    """The fresh phrasing's English and Chinese sets ("natural", "zh"), judged as ``generate``'s."""
    rng = random.Random(seed)
    triples = Counter((r["gender"], r["colour"], r["article_type"]) for r in rows)
    usable = sorted(t for t, n in triples.items() if n >= 2)
    rng.shuffle(usable)
    sets: dict[str, list[tuple[dict[str, object], dict[str, int]]]] = defaultdict(list)
    for gender, colour, atype in usable:
        qrels = judge(rows, gender, colour, atype)
        if atype in FRESH_TYPE_EN and len(sets["natural"]) < per_kind:
            col = rng.choice(FRESH_COLOUR_EN.get(colour, [colour.lower()]))
            kind, who = rng.choice(FRESH_TYPE_EN[atype]), rng.choice(FRESH_GENDER_EN[gender])
            text = f"{col} {kind} for {who}" if rng.random() < 0.5 else f"{kind} in {col} for {who}"
            sets["natural"].append(({"text": text}, qrels))
        if atype in FRESH_TYPE_ZH and colour in FRESH_COLOUR_ZH and len(sets["zh"]) < per_kind:
            text = rng.choice(FRESH_GENDER_ZH[gender]) + rng.choice(FRESH_COLOUR_ZH[colour]) + rng.choice(FRESH_TYPE_ZH[atype])
            sets["zh"].append(({"text": text}, qrels))
    return sets


def write_set(items: list[tuple[dict[str, object], dict[str, int]]], qpath: Path, rpath: Path, prefix: str) -> None:
    """One set as a JSONL query file and TREC qrels, query ids ``{prefix}000``, ``{prefix}001``, …"""
    with qpath.open("w", encoding="utf-8") as fq, rpath.open("w", encoding="utf-8") as fr:
        for n, (q, qrels) in enumerate(items):
            qid = f"{prefix}{n:03d}"
            fq.write(json.dumps({"qid": qid, **q}, ensure_ascii=False) + "\n")
            for doc, grade in sorted(qrels.items()):
                fr.write(f"{qid} 0 {doc} {grade}\n")


def write_sets(sets: dict[str, list[tuple[dict[str, object], dict[str, int]]]], out: Path) -> dict[str, tuple[Path, Path]]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, items in sets.items():
        paths[kind] = (out / f"q-{kind}-gen.jsonl", out / f"qrels-{kind}-gen.txt")
        write_set(items, *paths[kind], prefix=f"g{kind}")
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("catalog", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-kind", type=int, default=60)
    args = ap.parse_args()
    rows = list(csv.DictReader(args.catalog.open(encoding="utf-8")))
    sets = generate(rows, args.seed, args.per_kind)
    for kind, (qpath, _r) in write_sets(sets, args.out).items():
        print(f"{kind}: {len(sets[kind])} queries → {qpath}")


if __name__ == "__main__":
    main()
