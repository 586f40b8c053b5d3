"""Name -> object registries for losses, architectures, datasets and variants.

Registries are plain dicts behind a validating ``register`` (torch-fidelity's habit): names are
strings without whitespace, duplicates are refused, and a miss lists the known names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ganzoo.errors import GanzooError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, check: Callable[[T], str | None] | None = None) -> None:
        self.kind = kind
        self._check = check
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name) or ":" in name:
            raise GanzooError(f"{self.kind} name must be a non-empty string without whitespace or ':', got {name!r}")
        if name in self._items:
            raise GanzooError(f"{self.kind} {name!r} is already registered")
        if self._check is not None and (problem := self._check(item)) is not None:
            raise GanzooError(f"cannot register {self.kind} {name!r}: {problem}")
        self._items[name] = item
        return item

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(item: T) -> T:
            return self.register(name, item)

        return wrap

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise GanzooError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def unregister(self, name: str) -> None:
        """For tests and notebooks that redefine an entry; normal code never needs it."""
        self.get(name)
        del self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def __len__(self) -> int:
        return len(self._items)


def dataclass_subclass_of(base: type) -> Callable[[type], str | None]:
    """The check for registries of configurable components: a @dataclass subclass of ``base``,
    so its fields are its hyperparameters and it round-trips through config.json."""

    def check(cls: type) -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            return f"must be a subclass of ganzoo.{base.__name__}"
        if not dataclasses.is_dataclass(cls):
            return "must be a @dataclass (its fields are its hyperparameters)"
        return None

    return check
