"""Name -> object registries for losses, penalties, architectures, datasets and variants.

Registries are plain dicts behind a validating ``register`` (torch-fidelity's habit): names are
strings without whitespace, duplicates are refused, and a miss lists the known names.

An entry is also checked against the calls ganzoo will make on it (``signature_problem``): ganzoo
passes every input by name, and a loss whose ``generator_loss`` names a parameter ganzoo has no input
for is refused at registration, in one line naming its file and line, rather than crashing (or, were
inputs passed by position, training on swapped inputs) mid-training. An entry a plugin registers remembers that plugin (``origin``), which
``ganzoo list`` shows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from ganzoo.core.errors import GanzooError
from ganzoo.core.package import PACKAGE_ROOT

T = TypeVar("T")
_PACKAGE = str(PACKAGE_ROOT) + os.sep  # every frame under it is ganzoo's own
_loading: list[str] = []  # the plugins being loaded, innermost last (ganzoo.core.plugins sets it)


@contextlib.contextmanager
def registering_for(plugin: str) -> Iterator[None]:
    """Entries registered inside this block are ``plugin``'s (its file or module, as loaded)."""
    _loading.append(plugin)
    try:
        yield
    finally:
        _loading.pop()


def _plugin_registering() -> str | None:
    """The plugin being loaded, unless the registration comes from the import of a ganzoo module
    the plugin triggered (that module's built-ins are not the plugin's)."""
    if not _loading:
        return None
    frame = sys._getframe(2)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        if frame.f_code.co_name == "<module>":
            return None
        frame = frame.f_back
    return _loading[-1]


class Registry(Generic[T]):
    def __init__(self, kind: str, check: Callable[[T], str | None] | None = None) -> None:
        self.kind = kind
        self._check = check
        self._items: dict[str, T] = {}
        self._origins: dict[str, str] = {}  # name -> the plugin that registered it; built-ins have none

    def register(self, name: str, item: T) -> T:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name) or ":" in name:
            raise GanzooError(f"{self.kind} name must be a non-empty string without whitespace or ':', got {name!r}")
        if name in self._items:
            raise GanzooError(f"{self.kind} {name!r} is already registered")
        if self._check is not None and (problem := self._check(item)) is not None:
            raise GanzooError(f"cannot register {self.kind} {name!r}: {problem}")
        self._items[name] = item
        if (plugin := _plugin_registering()) is not None:
            self._origins[name] = plugin
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
        self._origins.pop(name, None)

    def origin(self, name: str) -> str | None:
        """The plugin (file or module, as loaded) that registered ``name``; None for ganzoo's own."""
        self.get(name)
        return self._origins.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def in_order(self) -> list[str]:
        """The names in the order they were registered (iteration is alphabetical)."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


def signature_problem(fn: Any, args: Sequence[str], name: str, *, bound: bool = False,
                      optional: Sequence[str] = ()) -> str | None:
    """Why ``fn`` cannot be called with the inputs ``args`` by name (after ``self`` when ``bound``: a
    plain function looked up on a class), or None. ganzoo passes every input by its name, so the
    order of ``fn``'s parameters is its own: ``(self, fake, real)`` receives each where it belongs.
    Extra parameters with defaults and ``**kwargs`` are fine; one that needs an input ganzoo does
    not have, or lacks one ganzoo passes, is not. Of the ``optional`` inputs, ganzoo passes those
    ``fn`` names as parameters."""
    expected = f"({', '.join(args)})"
    if not callable(fn):
        return f"{name} must be {'a method' if bound else 'a callable'} taking {expected}, got {fn!r}"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # no signature to read (some builtins): nothing to check
    inputs = {a: object() for a in args}
    named = {n: object() for n in optional if n in signature.parameters}
    try:
        signature.bind(*([object()] if bound else []), **inputs, **named)
    except TypeError:
        shown = signature.replace(
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
        hint = f" and may also name {', '.join(optional)}" if optional else ""
        first = next(iter(signature.parameters), None)
        if bound and first not in ("self", "cls"):
            try:
                signature.bind(**inputs, **named)
                hint += " (it lacks self; a method's first parameter is self)"
            except TypeError:
                pass
        return f"{name}{shown} must accept {expected} by name{hint}{defined_at(fn)}"
    return None


def defined_at(fn: Any) -> str:
    """" (defined at FILE:LINE)" for ``fn`` (the path relative to the working directory when under it), or ""."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None or code.co_filename.startswith("<"):
        return ""
    path = os.path.abspath(code.co_filename)
    here = os.getcwd() + os.sep
    return f" (defined at {path.removeprefix(here)}:{code.co_firstlineno})"


def method_problem(cls: type, base: type, required: Sequence[str] = (),
                   optional: Mapping[str, Sequence[str]] | None = None) -> str | None:
    """The first method of ``base`` that ``cls`` overrides with a signature ganzoo cannot call, or
    leaves undefined although it is ``required``; None when every one is fine. What is expected of
    a method is read from ``base``'s own definition, so the base class is the one place it is written;
    ``optional[name]``: inputs that method may name as well (ganzoo passes each it names)."""
    for name, declared in vars(base).items():
        base_fn = declared.__func__ if isinstance(declared, classmethod) else declared
        if name.startswith("_") or not inspect.isfunction(base_fn):
            continue
        base_sig = inspect.signature(base_fn)
        args = [p.name for p in list(base_sig.parameters.values())[1:]]
        extra = (optional or {}).get(name, ())
        impl = inspect.getattr_static(cls, name)
        if impl is declared:
            if name in required:
                return f"must define {name}({', '.join(['self', *args])}); see ganzoo.{base.__name__}"
            continue
        if isinstance(impl, staticmethod):
            problem = signature_problem(impl.__func__, args, name, optional=extra)
        elif isinstance(impl, classmethod):
            problem = signature_problem(impl.__func__, args, name, bound=True, optional=extra)
        elif inspect.isfunction(impl) or not callable(getattr(cls, name, None)):
            problem = signature_problem(impl, args, name, bound=True, optional=extra)
        else:
            continue  # some other descriptor: its binding is its own business
        if problem is not None:
            return f"{problem}; see ganzoo.{base.__name__}"
    return None


def dataclass_subclass_of(base: type, required: Sequence[str] = (),
                          optional: Mapping[str, Sequence[str]] | None = None) -> Callable[[type], str | None]:
    """The check for registries of configurable components: a @dataclass subclass of ``base``,
    so its fields are its hyperparameters and it round-trips through config.json, whose methods
    can be called as ``base`` declares them (``required``: those it must define itself;
    ``optional``: the further inputs a method may name, see ``method_problem``)."""

    def check(cls: type) -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            return f"must be a subclass of ganzoo.{base.__name__}"
        if not dataclasses.is_dataclass(cls):
            return "must be a @dataclass (its fields are its hyperparameters)"
        return method_problem(cls, base, required, optional)

    return check


def callable_with(*args: str, what: str, see: str) -> Callable[[Any], str | None]:
    """The check for registries of plain callables (dataset loaders, ``what``): callable with ``args``."""

    def check(fn: Any) -> str | None:
        name = f"{what} {getattr(fn, '__qualname__', type(fn).__name__)}" if callable(fn) else what
        problem = signature_problem(fn, args, name)
        return None if problem is None else f"{problem}; see {see}"

    return check
