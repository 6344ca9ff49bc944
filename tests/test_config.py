"""The strict config loader: unknown keys, types, ranges, overrides, TOML round trip."""

import tomllib
from dataclasses import dataclass

import pytest

from mvhand.config import (
    config_from_dict,
    config_to_toml,
    describe_config,
    load_config,
    param,  # fmt: skip
    parse_overrides,
)
from mvhand.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    weight: float = param(1.0, "a weight", ge=0.0)
    mode: str = param("a", "a mode", choices=("a", "b"))


@dataclass(frozen=True)
class Outer:
    n: int = param(3, "a count", ge=1, le=10)
    flag: bool = param(True, "a flag")
    names: tuple[str, ...] = param((), "names")
    inner: Inner = param(Inner(), "inner section")


def test_defaults_and_nested_values(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("n = 5\n[inner]\nweight = 2\n")
    cfg = load_config(Outer, path)
    assert cfg.n == 5 and cfg.inner.weight == 2.0 and cfg.inner.mode == "a" and cfg.flag


@pytest.mark.parametrize(
    "text, needle",
    [
        ("m = 1\n", "'m' is not a known setting"),
        ("[inner]\nwieght = 1\n", "'inner.wieght' is not a known setting"),
        ("n = 0\n", "'n' must be >= 1"),
        ("n = 2.5\n", "'n' must be an integer"),
        ("flag = 1\n", "'flag' must be true or false"),
        ("[inner]\nmode = 'c'\n", "'inner.mode' must be one of"),
        ("inner = 3\n", "'inner' must be a table"),
    ],
)
def test_bad_values_name_key_and_file(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(Outer, path)
    assert needle in str(exc.value) and "bad.toml" in str(exc.value)


def test_not_toml_and_missing_file(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("n = = 2")
    with pytest.raises(ConfigError, match="not a valid TOML"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "nope.toml")


def test_overrides_parse_toml_values_and_apply_after_file(tmp_path):
    assert parse_overrides(["a.b=1", "c=true", "d=word", "e=[1, 2]"]) == {
        "a": {"b": 1}, "c": True, "d": "word", "e": [1, 2]}  # fmt: skip
    path = tmp_path / "c.toml"
    path.write_text("n = 5\n")
    cfg = load_config(Outer, path, ["inner.mode=b", "n=7"])
    assert cfg.n == 7 and cfg.inner.mode == "b"
    with pytest.raises(ConfigError, match="--set"):
        load_config(Outer, None, ["inner.weight=-1"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["novalue"])


def test_toml_round_trip_keeps_every_value():
    cfg = config_from_dict(Outer, {"n": 4, "names": ["x", "y"], "inner": {"mode": "b"}})
    text = config_to_toml(cfg)
    assert "# inner.weight: a weight" in text
    assert config_from_dict(Outer, tomllib.loads(text)) == cfg


def test_describe_lists_every_leaf():
    keys = [k for k, _, _ in describe_config(Outer)]
    assert keys == ["n", "flag", "names", "inner.weight", "inner.mode"]
