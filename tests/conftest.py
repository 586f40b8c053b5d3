from __future__ import annotations

import pytest


@pytest.fixture
def registered():
    """Register entries for one test and remove them afterwards, so tests do not leak into the
    registry that the contract tests parametrize over."""
    added: list[tuple[object, str]] = []

    def register(registry, name: str, item):
        registry.register(name, item)
        added.append((registry, name))
        return item

    yield register
    for registry, name in reversed(added):
        registry.unregister(name)
