"""The run config below the entry points: an immutable, ordered tree of named fields."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NoReturn


class Frozen(Mapping):
    """An immutable config section: fields by attribute (`config.train.batch_size`) or by key.

    Built by `freeze`. Nested sections are `Frozen` too and sequences are tuples, so a whole
    config is hashable when its leaves are. Iteration, `items()` and `to_dict()` keep the order
    the fields were given in. Setting a field raises; `replace` returns a changed copy.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        """Freezes `fields` (nested mappings, ConfigDicts and sequences included).

        Args:
          fields: field name -> value, in the order the fields are kept.
        """
        frozen = {key: _freeze_value(value) for key, value in (fields or {}).items()}
        object.__setattr__(self, "_fields", frozen)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(
                f"The config has no field {name!r}; its fields: {', '.join(self._fields)}."
            ) from None

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        _refuse(name)

    def __delattr__(self, name: str) -> NoReturn:
        _refuse(name)

    def __setitem__(self, name: str, value: Any) -> NoReturn:
        _refuse(name)

    def __delitem__(self, name: str) -> NoReturn:
        _refuse(name)

    def __getitem__(self, name: str) -> Any:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Frozen):
            return self._fields == other._fields
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(frozenset(self._fields.items()))

    def __repr__(self) -> str:
        return f"Frozen({self._fields!r})"

    def __reduce__(self) -> tuple[type[Frozen], tuple[dict[str, Any]]]:
        return Frozen, (self._fields,)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain nested dicts (sections) in their order; sequences stay tuples."""
        return {key: _thaw(value) for key, value in self._fields.items()}

    def replace(self, changes: Mapping[str, Any] | None = None, /, **fields: Any) -> Frozen:
        """A copy with some fields changed; `self` stays as it is.

        Args:
          changes: dotted field -> new value (`{"em.likelihood": "mean"}`).
          **fields: top-level field -> new value (`seed=1`, `train=...`).

        Returns:
          The changed copy (new values frozen as `freeze` does).

        Raises:
          KeyError: a field the config does not have, naming it.
        """
        out = self
        for field, value in {**(changes or {}), **fields}.items():
            out = out._replace_path(field.split("."), value, field)
        return out

    def _replace_path(self, path: list[str], value: Any, field: str) -> Frozen:
        """A copy with the field at `path` (the dotted `field`) set to `value`."""
        key, *rest = path
        current = self._fields.get(key)
        if key not in self._fields or (rest and not isinstance(current, Frozen)):
            raise KeyError(f"the config has no field {field!r}")
        new = current._replace_path(rest, value, field) if rest else value
        return Frozen({**self._fields, key: new})


RunConfig = Frozen  # a whole run's config, as the code below the entry points receives it


def freeze(config: Any) -> Frozen:
    """`config` as a `Frozen` tree: a copy, which later changes of `config` do not reach.

    Args:
      config: a `Frozen` (returned as it is), a mapping, or a launcher's `ConfigDict` (any
        object with `to_dict()`, whose field references are resolved).

    Returns:
      The frozen config, fields in `config`'s order.

    Raises:
      TypeError: `config` is none of these.
    """
    if isinstance(config, Frozen):
        return config
    if isinstance(config, Mapping):
        return Frozen(config)
    if callable(getattr(config, "to_dict", None)):
        return Frozen(config.to_dict())
    raise TypeError(f"freeze: cannot freeze a {type(config).__name__}; pass a ConfigDict or dict.")


def _freeze_value(value: Any) -> Any:
    """Mappings and ConfigDicts as `Frozen`, lists and tuples as tuples, anything else as is."""
    if isinstance(value, list | tuple):
        return tuple(_freeze_value(v) for v in value)
    if isinstance(value, Mapping) or callable(getattr(value, "to_dict", None)):
        return freeze(value)
    return value


def _thaw(value: Any) -> Any:
    """`Frozen` sections back to dicts, inside tuples too."""
    if isinstance(value, Frozen):
        return value.to_dict()
    if isinstance(value, tuple):
        return tuple(_thaw(v) for v in value)
    return value


def _refuse(name: str) -> NoReturn:
    """Raises the error of every attempt to change a frozen config."""
    raise AttributeError(
        f"The run config is frozen: cannot change {name!r}; use config.replace(...) for a changed "
        "copy, or change the ConfigDict before training starts."
    )
