"""Private is private (issue 12.4, STYLE 11): the public modules and what each one exports.

Modelled on httpx's `tests/test_exported_members.py`. A public module's `__all__` lists
its public names: every public class and function defined there (or, for a package, in its
own submodules and re-exported), and nothing the module does not bind. (httpx's exact
equality with `vars()` would also need every module to import its tools under underscore
names; the rule here stops at what a module defines.) Every other importable module of the package
is internal, which its path says with an underscore component (`magiclink._bootstrap`,
`magiclink.adapters.sqlalchemy._rows`).

Decision on `magiclink.testing`: the whole package is public. Its submodules
(`contract`, the `contract_*` parts, `faults`, `properties`, `strategies`, `world`) are the
shipped test kit whose paths hosts import (docs/adapters.md, SPEC §5.5), so each of them is
held to the same `__all__` rule as the allow-listed modules.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import magiclink
import magiclink.testing

PUBLIC_MODULES = [
    "magiclink",
    "magiclink.ports",
    "magiclink.adapters.memory",
    "magiclink.adapters.sqlalchemy",
    "magiclink.adapters.prometheus",
    "magiclink.adapters.smtp",
    "magiclink.web",
    "magiclink.testing",
    "magiclink.cli",
    "magiclink.asyncio",
]
"""The documented import paths of magiclink."""

PUBLIC_PACKAGES = ["magiclink.testing"]
"""Packages every submodule of which is public (see the module docstring)."""

LAYER_PACKAGES = ["magiclink.adapters", "magiclink.domain"]
"""Packages that only hold a layer: they export nothing, and their modules are public by
their own entry above or underscore-named."""


def _testing_modules() -> list[str]:
    prefix = f"{magiclink.testing.__name__}."
    return sorted(info.name for info in pkgutil.iter_modules(magiclink.testing.__path__, prefix))


def _lazy_names(module: types.ModuleType) -> set[str]:
    """Names a module provides through a module `__getattr__` (the contract classes, the
    async SMTP notifier whose dependency is an extra): those of `__all__` it resolves."""
    if "__getattr__" not in vars(module):
        return set()
    return {name for name in getattr(module, "__all__", ()) if hasattr(module, name)}


def _bound_names(module: types.ModuleType) -> set[str]:
    """Every non-underscore name the module binds (or provides lazily), submodules aside."""
    bound = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    return bound | _lazy_names(module)


def _defined_names(module: types.ModuleType) -> set[str]:
    """Public classes and functions defined in the module, or (for a package) in its own
    submodules: these are what it offers, so `__all__` must list each one."""
    own = module.__name__
    is_package = hasattr(module, "__path__")
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or not (inspect.isclass(value) or inspect.isroutine(value)):
            continue
        origin = str(getattr(value, "__module__", ""))
        if origin == own or (is_package and origin.startswith(f"{own}.")):
            names.add(name)
    return names


def _module_params() -> list[object]:
    params: list[object] = []
    for name in PUBLIC_MODULES + LAYER_PACKAGES + _testing_modules():
        params.append(name)
    return params


@pytest.mark.parametrize("name", _module_params())
def test_all_equals_the_public_names_of_each_public_module(name: str) -> None:
    """Issue 12.4: `__all__` of each public module lists every public class and function it
    defines or re-exports from its own package, and only names the module really binds."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    assert _defined_names(module) - set(exported) == set(), f"missing from {name}.__all__"
    assert set(exported) - _bound_names(module) == set(), f"{name}.__all__ names nothing"
    for member in exported:
        assert getattr(module, member) is not None, f"{name}.{member} does not resolve"


def test_all_of_magiclink_is_sorted_like_httpx() -> None:
    """Issue 12.4: the top-level `__all__` is sorted, so a diff shows what was added."""
    assert magiclink.__all__ == sorted(magiclink.__all__)


def _all_modules() -> list[str]:
    """Every importable module path of the package (namespace dirs like migrations excluded)."""
    found = ["magiclink"]
    for info in pkgutil.walk_packages(magiclink.__path__, "magiclink."):
        found.append(info.name)
    return sorted(found)


def _is_accounted_for(name: str) -> bool:
    if name in PUBLIC_MODULES or name in LAYER_PACKAGES:
        return True
    if any(part.startswith("_") for part in name.split(".")):
        return True
    return any(name.startswith(f"{package}.") for package in PUBLIC_PACKAGES)


def test_the_module_walk_sees_the_packages() -> None:
    """The walk below is not vacuous: it reaches every layer of the package."""
    modules = _all_modules()
    for expected in ("magiclink.ports", "magiclink.adapters.memory", "magiclink.testing.world"):
        assert expected in modules


def test_every_module_is_public_or_underscore_named() -> None:
    """Issue 12.4: an importable module is allow-listed, underscore-named, or in a public
    package; anything else is an internal module that looks public."""
    stray = [name for name in _all_modules() if not _is_accounted_for(name)]
    assert stray == []
