"""The documentation's shape: README.md is the front door (short, linking each package's reference page),
each package's README.md names every module it holds, every link resolves, and the table of moved
module paths is the one the code keeps."""

from __future__ import annotations

import re

import pytest
from support.paths import PACKAGE, README, ROOT, page

from ganzoo.core.deprecations import MOVED

PACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
PAGES = [README, *(page(p) for p in PACKAGES)]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_a_front_door_that_links_every_packages_page():
    text = README.read_text()
    assert len(text.splitlines()) < 350
    for package in PACKAGES:
        assert f"(ganzoo/{package}/README.md)" in text, package


@pytest.mark.parametrize("package", PACKAGES)
def test_each_packages_page_names_every_module_it_holds(package):
    text = page(package).read_text()
    modules = sorted(p.relative_to(PACKAGE / package) for p in (PACKAGE / package).glob("*.py")
                     if p.name != "__init__.py")
    folders = sorted(p.parent.name for p in (PACKAGE / package).glob("*/__init__.py"))
    missing = [str(m) for m in modules if f"`{m}`" not in text and f"`{m.stem}`" not in text]
    missing += [f for f in folders if f"`{f}/`" not in text]
    assert missing == [], f"ganzoo/{package}/README.md does not say what these hold"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    broken = [target for target in LINK.findall(path.read_text())
              if "://" not in target and not (path.parent / target).exists()]
    assert broken == []


def test_the_moved_paths_table_is_the_codes():
    text = page("core").read_text()
    table = text[text.index("<!-- moved-modules -->"):]
    rows = dict(re.findall(r"^\| `(ganzoo[\w.]*)` \| `(ganzoo[\w.]*)` \|$", table, re.M))
    assert rows == MOVED
