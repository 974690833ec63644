"""Settings objects: frozen dataclasses, the only home of their defaults, to and from plain values.

A run's config is a settings dataclass (it may embed another family's settings object as a
field); :func:`to_dict` turns it into the nested plain mapping ``config.toml`` holds, and
:func:`from_dict` builds it back, refusing unknown keys and wrong types loudly and coercing
only what TOML cannot say (lists to tuples, integers to floats). A float must be finite (NaN
and infinities are refused) unless its field says ``metadata={ALLOW_NONFINITE: True}``. Values
are checked by each class's ``__post_init__`` when the object is made, before any data is
loaded or any file written.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo:
    ...     lr: float = 0.1
    ...     layers: tuple[int, ...] = (500,)
    >>> from_dict(Demo, {"lr": 1, "layers": [8, 4]})
    Demo(lr=1.0, layers=(8, 4))
    >>> to_dict(Demo())
    {'lr': 0.1, 'layers': [500]}
    >>> default_of(Demo, "layers")
    (500,)
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")

#: field metadata key: this float field may hold NaN or an infinity
ALLOW_NONFINITE = "allow_nonfinite"


def to_dict(obj: Any) -> dict[str, Any]:
    """A settings object as nested plain values (tuples as lists, nested objects as tables)."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def check_count(name: str, value: Any, minimum: int = 1, what: str = "") -> None:
    """Refuse ``value`` unless it is a whole number >= ``minimum`` (a bool is not a number).

    Example:
        >>> check_count("k", 0, 1, "Gibbs steps per update")
        Traceback (most recent call last):
        ...
        ValueError: k must be >= 1 (Gibbs steps per update); got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be >= {minimum}{f' ({what})' if what else ''}; got {value!r}")


def default_of(cls: type, name: str) -> Any:
    """The default of field ``name`` of settings class ``cls`` (its one home)."""
    field = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if field is None:
        raise KeyError(f"{cls.__name__} has no setting {name!r}")
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    if field.default is dataclasses.MISSING:
        raise KeyError(f"{cls.__name__}.{name} has no default")
    return field.default


def from_dict(cls: type[T], mapping: Mapping[str, Any], where: str | None = None, *,
              missing_is_none: bool = False) -> T:
    """Build settings ``cls`` from plain values, refusing unknown keys and wrong types.

    Args:
        mapping: field values; a nested settings field takes a table.
        where: what to name in messages (a file, a table); default the class name.
        missing_is_none: a field missing from ``mapping`` is None where its type allows
            (a written config leaves None values out); else it takes its default.

    Raises:
        ValueError: an unknown key or a value of the wrong type, named with ``where``.
    """
    where = where or cls.__name__
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{where} must be a table of settings; got {mapping!r}")
    hints, fields = typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    values = {k: coerce(hints[k], v, f"{where}: {k}", finite=not fields[k].metadata.get(ALLOW_NONFINITE))
              for k, v in mapping.items()}
    if missing_is_none:
        values.update({k: None for k in fields if k not in values and _allows_none(hints[k])})
    return cls(**values)


def _allows_none(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def coerce(hint: Any, value: Any, what: str, finite: bool = True) -> Any:
    """``value`` checked against type ``hint`` (lists become tuples, ints floats where asked).

    With ``finite`` (the default) a float must be finite: NaN and infinities are refused.

    Raises:
        ValueError: naming ``what`` and the type it must have.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(arg, value, what, finite)
            except ValueError:
                pass
        raise ValueError(f"{what} must be {_name(hint)}; got {value!r}")
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, what)
    if origin is tuple:
        return _coerce_tuple(args, value, what, finite)
    value = _coerce_scalar(hint, value, what)
    if finite and isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number; got {value!r}")
    return value


def _coerce_tuple(args: tuple[Any, ...], value: Any, what: str, finite: bool) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list; got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(args[0], v, what, finite) for v in value)
    if len(value) != len(args):
        raise ValueError(f"{what} must be a list of {len(args)} values; got {value!r}")
    return tuple(coerce(a, v, what, finite) for a, v in zip(args, value))


def _coerce_scalar(hint: Any, value: Any, what: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and (type(value) is hint or (hint is not bool and isinstance(value, hint)
                                                            and not isinstance(value, bool))):
        return value
    raise ValueError(f"{what} must be {_name(hint)}; got {value!r}")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def flat_defaults(cls: type) -> dict[str, Any]:
    """Every leaf setting of ``cls`` by its own name, with the default it takes in ``cls``.

    A nested settings field contributes its fields with the values of the field's default
    object (so a run config may state its own default for an embedded family's setting).
    This is what command-line options are checked against.

    Raises:
        KeyError: if two leaves share a name (flat names must be unambiguous).
    """
    return _flat(cls())


def _flat(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        leaves = _flat(value) if dataclasses.is_dataclass(value) else {f.name: value}
        clash = set(out) & set(leaves)
        if clash:
            raise KeyError(f"{type(obj).__name__}: setting name(s) {sorted(clash)} appear twice")
        out.update(leaves)
    return out


def from_flat(cls: type[T], values: Mapping[str, Any]) -> T:
    """Build ``cls`` from flat leaf values (command-line options), routed into nested settings.

    A leaf not given keeps the default of :func:`flat_defaults`.

    Raises:
        ValueError: for an unknown leaf name or a value of the wrong type.
    """
    unknown = sorted(set(values) - set(flat_defaults(cls)))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}")
    return _route(cls(), values)


def _route(obj: Any, values: Mapping[str, Any]) -> Any:
    changes = {}
    for f in dataclasses.fields(obj):
        current = getattr(obj, f.name)
        if dataclasses.is_dataclass(current):
            changes[f.name] = _route(current, values)
        elif f.name in values:
            changes[f.name] = values[f.name]
    return from_dict(type(obj), {**to_dict(obj), **{k: _plain(v) for k, v in changes.items()}})


def from_options(cls: type[T], options: Mapping[str, Any], **parsed: Any) -> T:
    """Build ``cls`` from a command's options: those named like its leaf settings, then ``parsed``.

    A command passes ``locals()``; options that are not settings (``out``, ``json``, ...) are
    left aside, and ``parsed`` gives the settings whose text the command turned into values.
    """
    names = flat_defaults(cls)
    return from_flat(cls, {**{k: v for k, v in options.items() if k in names}, **parsed})
