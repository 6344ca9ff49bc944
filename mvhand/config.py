"""Validated configuration: frozen dataclasses, a strict TOML loader, ``--set`` overrides.

Every config is a frozen dataclass whose fields are declared with :func:`param`, which holds the
default, a docstring and the allowed range in one place. :func:`load_config` reads a TOML file
into such a dataclass and rejects unknown keys, wrong types and out-of-range values with a
message naming the key and the file. :func:`config_to_toml` writes the resolved config next to
every output.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mvhand.errors import ConfigError

T = TypeVar("T")


def param(
    default: Any,
    doc: str,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    choices: Iterable[Any] | None = None,
) -> Any:
    """Declare a config field with its default, documentation and allowed range.

    Args:
        default: the default value (immutable: use tuples, not lists).
        doc: one sentence on what the field does, with units.
        ge, le, gt, lt: inclusive / exclusive bounds for numbers.
        choices: the allowed values for strings.
    """
    meta = {"doc": doc, "ge": ge, "le": le, "gt": gt, "lt": lt}
    meta["choices"] = None if choices is None else tuple(choices)
    if dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _where(key: str, source: str | None) -> str:
    return f"{source}: '{key}'" if source else f"'{key}'"


def _check_value(value: Any, ftype: Any, meta: Mapping[str, Any], key: str, src: str | None):
    """Coerce ``value`` to ``ftype`` and check the field's range; return the clean value."""
    origin = typing.get_origin(ftype)
    args = typing.get_args(ftype)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        ftype = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(ftype), typing.get_args(ftype)
    if ftype is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{_where(key, src)} must be true or false, got {value!r}")
    elif ftype is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{_where(key, src)} must be an integer, got {value!r}")
    elif ftype is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{_where(key, src)} must be a number, got {value!r}")
        value = float(value)
    elif ftype is str:
        if not isinstance(value, str):
            raise ConfigError(f"{_where(key, src)} must be a string, got {value!r}")
    elif origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_where(key, src)} must be a list, got {value!r}")
        item_t = args[0] if args else Any
        value = tuple(
            v if item_t is Any else _check_value(v, item_t, {}, f"{key}[{i}]", src)
            for i, v in enumerate(value)
        )
    for bound, ok in (("ge", lambda v, b: v >= b), ("le", lambda v, b: v <= b),
                      ("gt", lambda v, b: v > b), ("lt", lambda v, b: v < b)):  # fmt: skip
        b = meta.get(bound)
        if b is not None and not ok(value, b):
            sym = {"ge": ">=", "le": "<=", "gt": ">", "lt": "<"}[bound]
            raise ConfigError(f"{_where(key, src)} must be {sym} {b}, got {value!r}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{_where(key, src)} must be one of {list(choices)}, got {value!r}")
    return value


def config_from_dict(cls: type[T], data: Mapping[str, Any], source: str | None = None,
                     prefix: str = "", base: T | None = None) -> T:  # fmt: skip
    """Build config ``cls`` from a nested mapping, strictly.

    Args:
        cls: a dataclass type declared with :func:`param` fields.
        data: nested mapping, e.g. parsed TOML; missing keys keep their defaults.
        source: file name used in error messages.
        prefix: dotted key prefix for error messages.
        base: values to start from instead of the defaults.

    Raises:
        ConfigError: on unknown keys, wrong types or out-of-range values.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{_where(prefix.rstrip('.') or '<root>', source)} must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = prefix + unknown[0]
        raise ConfigError(
            f"{_where(key, source)} is not a known setting; known keys here: "
            f"{', '.join(prefix + k for k in fields)}"
        )
    base = base if base is not None else cls()
    values = {}
    for name, value in data.items():
        ftype = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(ftype):
            values[name] = config_from_dict(ftype, value, source, key + ".", getattr(base, name))
        else:
            values[name] = _check_value(value, ftype, fields[name].metadata, key, source)
    return dataclasses.replace(base, **values)  # type: ignore[type-var]


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=true"]`` into a nested mapping; values are parsed as TOML."""
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word is a string
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; ConfigError naming the file when it is missing or malformed."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; expected a config file (.toml)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})"
                          ) from None  # fmt: skip
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc})") from None


def load_config(cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = (),
                section: str | None = None) -> T:  # fmt: skip
    """Load config ``cls`` from an optional TOML file, then apply ``key=value`` overrides.

    Args:
        cls: the config dataclass.
        path: TOML file (None: defaults).
        overrides: ``key=value`` strings (``--set``), applied last.
        section: if the file has a table of this name, read ``cls`` from it (so that a whole
            pipeline config can be given where only one of its sections is needed).
    """
    cfg = cls()
    if path is not None:
        data = read_toml(path)
        source = str(path)
        if section is not None and isinstance(data.get(section), dict):
            data, source = data[section], f"{path} [{section}]"
        cfg = config_from_dict(cls, data, source)
    over = parse_overrides(overrides)
    if over:
        cfg = config_from_dict(cls, over, "--set", base=cfg)
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain dict of a config dataclass (tuples become lists, None is dropped)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = config_to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif value is not None:
            out[f.name] = value
    return out


def config_to_toml(cfg: Any) -> str:
    """The resolved config as TOML text, each key preceded by its docstring as a comment."""
    import tomli_w

    return _doc_header(cfg) + tomli_w.dumps(config_to_dict(cfg))


def _doc_header(cfg: Any, prefix: str = "") -> str:
    lines = [] if prefix else ["# mvhand resolved configuration; every key documented below.\n"]
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(_doc_header(value, prefix + f.name + "."))
        elif f.metadata.get("doc"):
            lines.append(f"# {prefix}{f.name}: {f.metadata['doc']}\n")
    return "".join(lines)


def describe_config(cls: type) -> list[tuple[str, Any, str]]:
    """``(dotted key, default, doc)`` for every field, for help texts and the README."""
    rows = []
    default = cls()
    for f in dataclasses.fields(cls):
        value = getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            rows += [(f"{f.name}.{k}", v, d) for k, v, d in describe_config(type(value))]
        else:
            rows.append((f.name, value, f.metadata.get("doc", "")))
    return rows
