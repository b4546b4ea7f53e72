"""Name and type registries: the one registry helper of spikeloom.

Surrogates, neurons, models, datasets, operator backends, layer roles and cost counters are all
looked up through these two classes, so every "unknown name" error reads the same way and every
extension point is a ``register`` call next to the thing being registered.

* :class:`Registry` maps case-insensitive names (``-`` and ``_`` are the same) to objects, with
  aliases and free-form metadata per entry.
* :class:`TypeRegistry` maps classes to values and looks an object up along its class's method
  resolution order, so a subclass inherits its parent's entry unless it registers its own.

Example::

    MODELS = Registry("model")

    @MODELS.register("liafnet", kinds=("frames",))
    class LIAFNet(nn.Module): ...

    MODELS.get("LIAFNet")            # the class
    MODELS.entry("liafnet").meta     # {"kinds": ("frames",)}
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import UnknownNameError

__all__ = ["Registry", "RegistryEntry", "TypeRegistry"]

T = TypeVar("T")


def _norm(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"registry names are strings, got {type(name).__name__}")
    return name.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class RegistryEntry(Generic[T]):
    """One registered object: its canonical ``name``, the object and its metadata."""

    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Case-insensitive name -> object registry with aliases.

    Args:
        kind: what the entries are (``"model"``, ``"surrogate"``, ...); used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, RegistryEntry[T]] = {}
        self._aliases: dict[str, str] = {}

    def register(
        self,
        name: str,
        obj: T | None = None,
        *,
        aliases: tuple[str, ...] = (),
        replace: bool = False,
        **meta: Any,
    ) -> Any:
        """Register ``obj`` under ``name`` (and ``aliases``); without ``obj``, a decorator.

        Raises:
            ValueError: when the name or an alias is taken and ``replace`` is False.
        """

        def add(o: T) -> T:
            key = _norm(name)
            for k in (key, *map(_norm, aliases)):
                taken = k in self._entries or k in self._aliases
                if taken and not replace:
                    raise ValueError(f"{self.kind} name {k!r} is already registered")
            self._entries[key] = RegistryEntry(key, o, dict(meta))
            for a in aliases:
                self._aliases[_norm(a)] = key
            return o

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (for tests and plug-ins)."""
        key = self._resolve(name)
        del self._entries[key]
        for a in [a for a, k in self._aliases.items() if k == key]:
            del self._aliases[a]

    def _resolve(self, name: str) -> str:
        key = _norm(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())
        return key

    def entry(self, name: str) -> RegistryEntry[T]:
        """The entry of ``name`` (an alias resolves to its canonical entry)."""
        return self._entries[self._resolve(name)]

    def get(self, name: str) -> T:
        """The object registered as ``name``.

        Raises:
            UnknownNameError: (a ``ValueError``) listing the registered names.
        """
        return self.entry(name).obj

    def names(self) -> list[str]:
        """Canonical names, sorted."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return [(k, self._entries[k].obj) for k in self.names()]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _norm(name)
        return key in self._entries or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


class TypeRegistry(Generic[T]):
    """Class -> value registry looked up along the method resolution order.

    Args:
        kind: what the values are (for error messages and ``repr``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._map: dict[type, T] = {}

    def register(self, cls: type | tuple[type, ...], value: T | None = None) -> Any:
        """Register ``value`` for ``cls`` (or each class of a tuple); without ``value``, a
        decorator of the value (``@reg.register(nn.Linear)`` over a function)."""

        def add(v: T) -> T:
            for c in cls if isinstance(cls, tuple) else (cls,):
                if not isinstance(c, type):
                    raise TypeError(f"{self.kind}: register a class, got {c!r}")
                self._map[c] = v
            return v

        return add if value is None else add(value)

    def unregister(self, cls: type) -> None:
        self._map.pop(cls, None)

    def lookup(self, obj: Any, default: Any = None) -> T | Any:
        """The value registered for ``obj``'s class or its nearest registered base class."""
        cls = obj if isinstance(obj, type) else type(obj)
        for base in cls.__mro__:
            if base in self._map:
                return self._map[base]
        return default

    def __contains__(self, obj: Any) -> bool:
        sentinel = object()
        return self.lookup(obj, sentinel) is not sentinel

    def types(self) -> list[type]:
        return list(self._map)

    def __repr__(self) -> str:
        return f"TypeRegistry({self.kind!r}, {[t.__name__ for t in self._map]})"

