"""Property tests: whatever a client sends, the API answers with a clear JSON error or a result, never a 500."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .conftest import AUTH, DEMO_DIR

PHOTO = (DEMO_DIR / "queries" / "shelf-lemon.jpg").read_bytes()
FIELDS = ["price", "category", "top_category", "brand", "id", "colour", "title", "x.y", "价格"]
OPS = ["=", "!=", "<", "<=", ">", ">=", " in ", " not in ", "==", "<<", "~"]
# Derandomized (and no example database): the suite is deterministic; a case found once is kept
# below as an explicit example.
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

texts = st.text(max_size=60) | st.sampled_from(["apple", "牛奶", "番茄 tomato", " ", "\x00", "a" * 1200, "%2e%2e/"])
filters = st.builds(lambda f, op, v: f"{f}{op}{v}", st.sampled_from(FIELDS), st.sampled_from(OPS),
                    st.text(max_size=12) | st.sampled_from(["[Apple, Pear]", "[", "2.5", "-1", "nan", "1e400"]))
ints = st.integers(-5, 12_000) | st.sampled_from([0, 1, 100, 101, 2**63])
json_values: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def check(r: Any) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code >= 400:
        err = r.json()["error"]
        assert err["status"] == r.status_code and err["message"] and "Traceback" not in r.text


@SETTINGS
@given(q=texts, fs=st.lists(filters | texts, max_size=3), page=ints, size=ints, explain=st.booleans(),
       history=st.lists(st.text(max_size=10), max_size=3), user=st.none() | st.text(max_size=300))
def test_get_search_never_500(client: TestClient, q: str, fs: list[str], page: int, size: int, explain: bool,
                              history: list[str], user: str | None) -> None:
    params: dict[str, Any] = {"q": q, "filter": fs, "page": page, "size": size, "explain": explain,
                              "history": history}
    if user is not None:
        params["user"] = user
    check(client.get("/search", params=params))


@SETTINGS
@given(body=st.fixed_dictionaries({}, optional={"q": json_values | texts, "filters": json_values | st.lists(filters),
                                                  "page": json_values | ints, "size": json_values | ints,
                                                  "explain": json_values, "user": json_values,
                                                  "history": json_values})
       | json_values)
def test_post_search_never_500(client: TestClient, body: Any) -> None:
    # Sent as raw text: Python's JSON writer (and FastAPI's reader) also speak NaN and Infinity.
    check(client.post("/search", content=json.dumps(body), headers={"content-type": "application/json"}))


@SETTINGS
@given(data=st.binary(max_size=2000) | st.builds(lambda n, tail: PHOTO[:n] + tail, st.integers(0, len(PHOTO)),
                                                 st.binary(max_size=50)),
       q=texts, f=st.lists(filters, max_size=2), size=st.sampled_from(["3", "0", "x", "-1", "100"]))
def test_image_search_never_500(client: TestClient, data: bytes, q: str, f: list[str], size: str) -> None:
    check(client.post("/search/image", files={"image": ("p.jpg", data, "image/jpeg")},
                      data={"q": q, "filter": f, "size": size}))


@SETTINGS
@given(pid=st.text(min_size=1, max_size=40), n=st.sampled_from(["0", "1", "2", "3", "-1", "x", "99999"]),
       size=ints)
def test_product_routes_never_500(client: TestClient, pid: str, n: str, size: int) -> None:
    p = quote(pid, safe="")
    for r in (client.get(f"/products/{p}"), client.get(f"/images/{p}", params={"n": n}),
              client.get(f"/products/{p}/similar", params={"size": size})):
        check(r)


@SETTINGS
@given(body=json_values | st.fixed_dictionaries({"events": st.lists(
    st.fixed_dictionaries({"type": st.sampled_from(["click", "impression", "cart", "purchase", "x"]),
                           "product_id": st.text(max_size=300)},
                          optional={"position": ints, "user": json_values, "query": texts}), max_size=3)}))
def test_events_never_500(client: TestClient, body: Any) -> None:
    check(client.post("/events", content=json.dumps(body), headers={"content-type": "application/json"}))


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(records=[{"id": "0", "image": "\x00"}])  # os.stat's ValueError on a NUL once escaped as a 500
@given(records=st.lists(st.dictionaries(st.sampled_from(["id", "title", "price", "image", "images", "category",
                                                          "attributes", "colour", "description"]),
                                        json_values | texts, max_size=5), min_size=1, max_size=3)
       | json_values)
def test_put_products_never_500(write_client: TestClient, records: Any) -> None:
    body = {"products": records} if isinstance(records, list) else records
    check(write_client.put("/products", content=json.dumps(body), headers={**AUTH, "content-type": "application/json"}))
