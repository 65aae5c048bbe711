"""Query understanding, learning-to-rank, events and personalisation on a small synthetic shop."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from shoplens import Config, Engine
from shoplens.cli.main import main
from shoplens.errors import NotFoundError
from shoplens.rank.features import FEATURES
from shoplens.types import Query

pytest.importorskip("lightgbm")

COLOURS = ["red", "blue", "green", "black"]
TYPES = ["dress", "shirt", "shoes", "bag"]
GENDERS = ["Women", "Men"]


@pytest.fixture
def shop(tmp_path: Path, fake_config: Config) -> Engine:
    path = tmp_path / "shop.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "price", "gender", "colour", "article_type"])
        n = 0
        for g in GENDERS:
            for c in COLOURS:
                for t in TYPES:
                    for v in range(2):
                        w.writerow([f"p{n}", f"{g} {c} {t} style {v}", 10 + n, g, c.title(), t.title()])
                        n += 1
    engine = Engine(tmp_path / "idx", fake_config)
    engine.add_catalog(path)
    return engine


def judged_queries(engine: Engine) -> tuple[list[tuple[str, Query]], dict[str, dict[str, int]]]:
    queries, qrels = [], {}
    for g in GENDERS:
        for c in COLOURS:
            for t in TYPES:
                qid = f"q-{g}-{c}-{t}"
                queries.append((qid, Query(f"{g.lower()} {c} {t}", k=20)))
                judged = {}
                for p in engine.products():
                    a = p.attributes
                    if a["article_type"] == t.title():
                        judged[p.id] = 2 if (a["colour"] == c.title() and a["gender"] == g) else 1
                qrels[qid] = judged
    return queries, qrels


def test_understanding_reads_attributes_and_price(shop: Engine) -> None:
    qu = shop.reranker.understanding(shop.state)
    u = qu.understand("women red dresses under 50")
    assert u.attributes["gender"][0] == "Women" and u.attributes["colour"][0] == "Red"
    assert u.attributes["article_type"][0] == "Dress" and u.price_max == 50
    assert qu.understand("50元以下").price_max == 50
    assert "price<=50" in u.filters()


def test_train_stores_ranker_used_by_search_and_explains(shop: Engine, tmp_path: Path) -> None:
    queries, qrels = judged_queries(shop)
    ranker = shop.train(queries, qrels)
    assert ranker.features == list(FEATURES)
    assert (shop.path / "ranker" / "model.txt").is_file()
    # Each query, its lexical-blind variant, and personalised copies (one attribute given by a
    # history instead of the words) when the catalogue has enough products to draw a history from.
    from shoplens.rank.train import HISTORY_COPIES

    history = ranker.meta["history_queries"]
    assert 0 < history <= HISTORY_COPIES * len(queries)
    assert ranker.meta["queries"] == 2 * len(queries) + history
    # The fields the judged queries ask for are the ones a history may state a preference on.
    assert ranker.meta["preference_fields"] == ["article_type", "colour", "gender"]
    assert all(0.0 <= c["cv_ndcg@10"] <= 1.0 for c in ranker.meta["cv"])
    res = shop.search("men blue shoes", k=3, explain=True)
    top = res.hits[0].product.attributes
    assert (top["gender"], top["colour"], top["article_type"]) == ("Men", "Blue", "Shoes")
    assert res.hits[0].explanation and "(bias)" in res.hits[0].explanation
    assert res.understood["attributes"]["colour"] == "Blue"
    # A reopened engine (another process) loads the stored ranker.
    reopened = Engine.open(shop.path)
    assert reopened.reranker.ranker is not None
    assert [h.id for h in reopened.search("men blue shoes", k=5).hits] == [
        h.id for h in shop.search("men blue shoes", k=5).hits
    ]


def test_history_personalises(shop: Engine) -> None:
    women = [p.id for p in shop.products() if p.attributes["gender"] == "Women"][:6]
    plain = shop.search("red shoes", k=4)
    personal = shop.search("red shoes", k=4, history=women)
    share = lambda res: np.mean([h.product.attributes["gender"] == "Women" for h in res.hits])  # noqa: E731
    assert share(personal) >= share(plain)
    assert share(personal) >= 0.75
    # The result says what the history told about the fields the query left open.
    assert personal.understood["history_prefers"] == {"gender": {"value": "Women", "share": 1.0}}
    assert "history_prefers" not in plain.understood


def test_events_are_validated_and_pseudonymised(
    shop: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            [
                json.dumps({"type": "click", "product": "p1", "user": "alice@example.com", "position": 2}),
                json.dumps({"type": "purchase", "product": "p1", "user": "alice@example.com"}),
                json.dumps({"type": "click", "product": "nope"}),
                json.dumps({"type": "teleport", "product": "p1"}),
                "{broken",
            ]
        )
    )
    assert main(["events", str(shop.path), str(events)]) == 0
    out = capsys.readouterr().out
    assert "2 events stored, 3 skipped" in out
    log = (shop.path / "events" / "events.jsonl").read_text()
    assert "alice" not in log and "p1" in log
    b = Engine.open(shop.path).reranker.behaviour(Engine.open(shop.path).state)
    assert b.purchases.sum() == 1 and b.clicks.sum() == 2.0  # a click at position 2 counts 2 (1/propensity)


def test_xgboost_ranker_trains_saves_and_explains(shop: Engine) -> None:
    pytest.importorskip("xgboost")
    queries, qrels = judged_queries(shop)
    ranker = shop.train(queries, qrels, library="xgboost")
    assert ranker.meta["library"] == "xgboost" and (shop.path / "ranker" / "model.json").is_file()
    res = shop.search("women green bag", k=3, explain=True)
    top = res.hits[0].product.attributes
    assert (top["gender"], top["colour"], top["article_type"]) == ("Women", "Green", "Bag")
    assert "(bias)" in res.hits[0].explanation and len(res.hits[0].explanation) > 2
    reopened = Engine.open(shop.path)
    assert reopened.reranker.ranker is not None and reopened.reranker.ranker.library == "xgboost"
    assert [h.id for h in reopened.search("women green bag", k=3).hits] == [h.id for h in res.hits]


def test_judgments_from_events_correct_position_bias(tmp_path: Path) -> None:
    from shoplens.rank.from_events import judgments_from_events

    log = tmp_path / "events.jsonl"
    lines = []
    for _ in range(4):  # "top" is shown at position 1 four times and clicked once
        lines.append({"type": "impression", "product": "top", "query": "Red Shoes", "position": 1})
        lines.append({"type": "impression", "product": "deep", "query": "red shoes", "position": 8})
    lines.append({"type": "click", "product": "top", "query": "red shoes", "position": 1})
    lines.append(
        {"type": "click", "product": "deep", "query": "red  shoes", "position": 8}
    )  # rarer seen, stronger
    lines.append({"type": "purchase", "product": "bought", "query": "bags"})
    lines.append({"type": "click", "product": "x", "position": 1})  # no query: popularity only
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    queries, qrels = judgments_from_events(log)
    assert [q.text for _, q in queries] == ["bags", "Red Shoes"]
    shoes = qrels[queries[1][0]]
    assert shoes == {"top": 0, "deep": 1}  # 1/4 raw CTR at the top vs 8×1/4 debiased far down
    assert qrels[queries[0][0]] == {"bought": 3}


def test_train_from_logged_events_cli(
    shop: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Shoppers searching "<colour> <type>" buy the women's product, shown at position 3.
    events = tmp_path / "ev.jsonl"
    rows = []
    for c in COLOURS:
        for t in TYPES:
            for p in shop.products():
                a = p.attributes
                if a["colour"] == c.title() and a["article_type"] == t.title():
                    kind = "click" if a["gender"] == "Women" else "impression"
                    rows.append(
                        {"type": kind, "product": p.id, "query": f"{c} {t}", "position": 3, "user": "u1"}
                    )
    events.write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["events", str(shop.path), str(events)]) == 0
    assert main(["train", str(shop.path), "--events"]) == 0
    out = capsys.readouterr().out
    assert "16 queries with clicks" in out
    meta = json.loads((shop.path / "ranker" / "ranker.json").read_text())
    assert meta["source"] == "events:events.jsonl"
    assert main(["train", str(shop.path), "--events", "--queries", str(events)]) == 2  # one source at a time


def test_recommend_and_bought_together(shop: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    women_bags = [p.id for p in shop.products() if p.attributes["gender"] == "Women" and p.attributes["article_type"] == "Bag"]
    recs = shop.recommend(women_bags[:3], k=5)
    assert len(recs.hits) == 5 and not {h.id for h in recs.hits} & set(women_bags[:3])  # own history left out
    assert sum(h.product.attributes["gender"] == "Women" for h in recs.hits) >= 4
    assert shop.recommend(k=5).hits == ()  # nothing to go on
    with pytest.raises(NotFoundError):
        shop.recommend(["no-such-product"])
    # Stored events: alice bought a women's bag and shoes together; carol carted both and a shirt.
    events = [
        {"type": "purchase", "product": women_bags[0], "user": "alice"},
        {"type": "purchase", "product": "p4", "user": "alice"},
        {"type": "cart", "product": women_bags[0], "user": "carol"},
        {"type": "cart", "product": "p4", "user": "carol"},
        {"type": "cart", "product": "p2", "user": "carol"},
    ]
    stored, problems = shop.add_events(events)
    assert stored == 5 and not problems
    together = shop.bought_together(women_bags[0], k=3)
    assert [h.id for h in together.hits][:2] == ["p4", "p2"] and "together" in together.hits[0].signals
    assert "fused" in shop.bought_together("p40", k=3).hits[0].signals  # no baskets: more like this
    by_user = shop.recommend(user="alice", k=3)
    assert by_user.hits and not {h.id for h in by_user.hits} & {women_bags[0], "p4"}
    # A query with a user id (no explicit history) is personalised from the stored events.
    plain = shop.search("shoes", k=4)
    personal = shop.search("shoes", k=4, user="alice")
    share = lambda res: np.mean([h.product.attributes["gender"] == "Women" for h in res.hits])  # noqa: E731
    assert share(personal) >= share(plain) and share(personal) >= 0.75
    assert main(["recommend", str(shop.path), "--user", "alice", "-k", "2"]) == 0
    assert main(["together", str(shop.path), women_bags[0], "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "bought together with" in out and "p4" in out
