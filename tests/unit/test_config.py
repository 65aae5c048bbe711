"""The typed config (shoplens.config): round trips, replace(), and validation of keys and types."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from shoplens.config import Config, EncodeConfig, IngestConfig, RetrieveConfig, default_cache_dir
from shoplens.errors import ConfigError


def custom() -> Config:
    return Config(
        ingest=IngestConfig(max_image_bytes=1234, allow_urls=False, url_timeout_s=2.5),
        encode=EncodeConfig(text_encoder="fake", image_encoder="fake", text_batch_size=8, cache=False),
        retrieve=RetrieveConfig(depth=50, rrf_k=10.0, weights={"bm25": 2.0, "image": 0.0}),
    )


def test_round_trip_defaults() -> None:
    cfg = Config()
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert Config.from_dict({}) == cfg


def test_round_trip_custom_values_through_json() -> None:
    cfg = custom()
    d = json.loads(json.dumps(cfg.to_dict()))  # what an index folder stores
    assert d["ingest"]["max_image_bytes"] == 1234
    assert d["retrieve"]["weights"] == {"bm25": 2.0, "image": 0.0}
    assert Config.from_dict(d) == cfg


def test_to_dict_has_a_section_per_stage() -> None:
    d = Config().to_dict()
    assert set(d) == {"ingest", "encode", "fuse", "align", "index", "retrieve"}
    assert d["encode"] == dataclasses.asdict(EncodeConfig())


def test_partial_sections_keep_defaults() -> None:
    cfg = Config.from_dict({"retrieve": {"depth": 10}, "fuse": None})
    assert cfg.retrieve.depth == 10
    assert cfg.retrieve.rrf_k == RetrieveConfig().rrf_k
    assert cfg.encode == EncodeConfig() and cfg.fuse == Config().fuse


def test_int_is_accepted_for_a_float_field() -> None:
    cfg = Config.from_dict({"retrieve": {"rrf_k": 30}, "ingest": {"url_timeout_s": 1}})
    assert cfg.retrieve.rrf_k == 30.0 and isinstance(cfg.retrieve.rrf_k, float)
    assert isinstance(cfg.ingest.url_timeout_s, float)


def test_replace_changes_only_named_fields() -> None:
    cfg = custom()
    new = cfg.replace(encode={"text_encoder": "e5"}, retrieve={"depth": 300, "rrf_k": 1})
    assert new.encode.text_encoder == "e5"
    assert new.encode.image_encoder == "fake" and new.encode.text_batch_size == 8  # untouched
    assert new.retrieve.depth == 300 and new.retrieve.rrf_k == 1.0
    assert new.retrieve.weights == {"bm25": 2.0, "image": 0.0}
    assert new.ingest == cfg.ingest
    # the original is unchanged (frozen, and replace works on a copy)
    assert cfg.encode.text_encoder == "fake" and cfg.retrieve.depth == 50
    assert cfg.replace() == cfg


def test_replace_does_not_share_the_weights_dict() -> None:
    cfg = custom()
    new = cfg.replace(retrieve={"weights": {"bm25": 0.5}})
    assert new.retrieve.weights == {"bm25": 0.5}
    assert cfg.retrieve.weights == {"bm25": 2.0, "image": 0.0}


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.encode = EncodeConfig()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.retrieve.depth = 1  # type: ignore[misc]


def test_replace_unknown_section_or_key() -> None:
    with pytest.raises(ConfigError, match="unknown config section 'encoder'"):
        Config().replace(encoder={"text_encoder": "fake"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in config section 'encode': \['text_model'\]"):
        Config().replace(encode={"text_model": "fake"})


def test_from_dict_unknown_keys() -> None:
    with pytest.raises(ConfigError) as exc:
        Config.from_dict({"retrieve": {"depth": 5, "dpeth": 5, "zzz": 1}})
    assert str(exc.value) == "unknown key(s) in config section 'retrieve': ['dpeth', 'zzz']"


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("retrieve", "depth", "200", "config retrieve.depth must be int, got str ('200')"),
        ("retrieve", "depth", 2.5, "config retrieve.depth must be int, got float (2.5)"),
        ("index", "hnsw_m", True, "config index.hnsw_m must be int, got bool (True)"),
        ("ingest", "allow_urls", 1, "config ingest.allow_urls must be bool, got int (1)"),
        ("ingest", "allow_urls", "yes", "config ingest.allow_urls must be bool, got str ('yes')"),
        ("retrieve", "rrf_k", "60", "config retrieve.rrf_k must be float, got str ('60')"),
        ("encode", "text_encoder", None, "config encode.text_encoder must be str, got NoneType (None)"),
        ("retrieve", "weights", [1.0], "config retrieve.weights must be dict, got list ([1.0])"),
    ],
)
def test_wrong_types_are_config_errors(section: str, key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Config.from_dict({section: {key: value}})
    assert str(exc.value) == message
    with pytest.raises(ConfigError):
        Config().replace(**{section: {key: value}})


def test_section_that_is_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="config section 'encode' must be a mapping, got str"):
        Config.from_dict({"encode": "fake"})


def test_resolved_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert EncodeConfig(cache_dir=str(tmp_path)).resolved_cache_dir() == tmp_path
    monkeypatch.setenv("SHOPLENS_CACHE", str(tmp_path / "env"))
    assert EncodeConfig().resolved_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("SHOPLENS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "shoplens"


# --- regressions (bugs found and fixed) ------------------------------------------------------


def test_from_dict_unknown_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match="retreive"):
        Config.from_dict({"retreive": {"depth": 5}})


def test_weights_values_must_be_numbers() -> None:
    with pytest.raises(ConfigError, match="weights"):
        Config.from_dict({"retrieve": {"weights": {"bm25": "heavy"}}})


def test_top_level_that_is_not_a_mapping() -> None:
    with pytest.raises(ConfigError):
        Config.from_dict([{"retrieve": {}}])  # type: ignore[arg-type]


def test_image_size_is_validated_and_old_indexes_keep_224(tmp_path) -> None:
    import json

    from shoplens import Config, Engine
    from shoplens.errors import ConfigError
    from shoplens.types import Product

    assert Config().encode.image_size == 224
    assert Config().replace(encode={"image_size": 192}).encode.image_size == 192
    with pytest.raises(ConfigError, match="image_size"):
        Config().replace(encode={"image_size": 20})
    fake = {"text_encoder": "fake", "image_encoder": "fake", "cache": False, "progress": False}
    Engine(tmp_path / "idx", Config().replace(encode=fake)).upsert([Product("a", "red dress")])
    # An index written before the setting existed: its config has no image_size.
    current = tmp_path / "idx" / (tmp_path / "idx" / "CURRENT").read_text().strip()
    raw = json.loads((current / "config.json").read_text())
    del raw["encode"]["image_size"]
    (current / "config.json").write_text(json.dumps(raw))
    assert Engine.open(tmp_path / "idx").config.encode.image_size == 224
    # A setting other than the default is kept by the index it built.
    other = Config().replace(encode={**fake, "image_size": 160})
    Engine(tmp_path / "idx2", other).upsert([Product("a", "red dress")])
    assert Engine.open(tmp_path / "idx2").config.encode.image_size == 160
    # Written before query_image_size / plain_image_size: every photo, queries too, at its one side.
    current = tmp_path / "idx2" / (tmp_path / "idx2" / "CURRENT").read_text().strip()
    raw = json.loads((current / "config.json").read_text())
    del raw["encode"]["query_image_size"], raw["encode"]["plain_image_size"]
    (current / "config.json").write_text(json.dumps(raw))
    enc = Engine.open(tmp_path / "idx2").config.encode
    assert (enc.image_size, enc.query_image_size, enc.plain_image_size) == (160, 160, 0)
    for key in ("query_image_size", "plain_image_size"):
        with pytest.raises(ConfigError, match=key):
            Config().replace(encode={key: 1000})
    assert Config().replace(encode={"plain_image_size": 0}).encode.plain_image_size == 0
