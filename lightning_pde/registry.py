"""Discovery of lightning-pde's plugins through Python entry points.

Every registrable thing, built-in or third-party, is found through one entry-point group per kind (docs/design.md). The
core package registers its own classes in its ``pyproject.toml`` through the same groups. Groups are read once,
lazily, on first use. A plugin that fails to import is recorded with its error and does not take the others down;
two distributions registering the same name in one group are an error that names both.

Compatibility is checked twice, and a mismatch is reported like an import failure (the entry is unusable, the rest
load): the plugin distribution's requirement on ``lightning-pde`` (``dependencies = ["lightning-pde>=0.1,<0.2"]``)
must admit the installed version, and the ``LPDE_PLUGIN_API`` its top-level package declares, if any, must equal
:data:`lightning_pde.PLUGIN_API_VERSION`.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys
from dataclasses import dataclass, field
from typing import Any

GROUPS: dict[str, str] = {
    "problems": "lightning_pde.problems",
    "modules": "lightning_pde.modules",
    "nets": "lightning_pde.nets",
    "derivatives": "lightning_pde.derivatives",
    "callbacks": "lightning_pde.callbacks",
    "quantizers": "lightning_pde.quantizers",
    "precision": "lightning_pde.precision",
    "optimizers": "lightning_pde.optimizers",
}


class PluginError(RuntimeError):
    """A plugin is missing, broken or registered twice."""


@dataclass
class Entry:
    """One entry point: its short name, the object it names once loaded, or the error it raised."""

    group: str
    name: str
    value: str
    distribution: str
    version: str
    obj: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Group:
    entries: dict[str, Entry] = field(default_factory=dict)
    conflicts: dict[str, list[Entry]] = field(default_factory=dict)


_loaded: dict[str, _Group] = {}


CORE_DISTRIBUTION = "lightning-pde"


def _core_version() -> str | None:
    try:
        return metadata.version(CORE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def requirement_error(requirements: list[str] | None, core_version: str | None) -> str | None:
    """Why a distribution with these ``Requires-Dist`` lines cannot use the installed lightning-pde, or None.

    Only an unconditional requirement on ``lightning-pde`` with a version specifier is checked; a bare
    ``lightning-pde`` or an unknown core version (a source tree that was not installed) admits anything."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    if core_version is None:
        return None
    for line in requirements or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) != CORE_DISTRIBUTION or requirement.marker is not None:
            continue
        try:
            admitted = requirement.specifier.contains(Version(core_version), prereleases=True)
        except InvalidVersion:
            return None
        if not admitted:
            return (f"requires {CORE_DISTRIBUTION}{requirement.specifier}, "
                    f"but {CORE_DISTRIBUTION} {core_version} is installed")
    return None


def api_error(obj: Any) -> str | None:
    """Why the object's plugin was written for another plugin API, or None (also when it declares none)."""
    from lightning_pde import PLUGIN_API_VERSION

    top = getattr(obj, "__module__", "").split(".")[0]
    declared = getattr(sys.modules.get(top), "LPDE_PLUGIN_API", None)
    if declared is None or declared == PLUGIN_API_VERSION:
        return None
    return (f"written for lightning-pde plugin API {declared!r}, this lightning-pde provides "
            f"{PLUGIN_API_VERSION} (update the plugin or lightning-pde)")


def _entry_points(group: str) -> list[tuple[metadata.EntryPoint, str, str, str | None]]:
    found = []
    seen: set[tuple[str, str, str]] = set()
    core_version = _core_version()
    for dist in metadata.distributions():
        dist_name = dist.metadata["Name"] or "?"
        incompatible = None
        for ep in dist.entry_points:
            # The same distribution can be visible twice on sys.path (editable installs); count it once.
            key = (dist_name, ep.name, ep.value)
            if ep.group == group and key not in seen:
                seen.add(key)
                if incompatible is None and dist_name != CORE_DISTRIBUTION:
                    incompatible = requirement_error(dist.requires, core_version) or ""
                found.append((ep, dist_name, dist.version, incompatible or None))
    return found


def _load_group(kind: str) -> _Group:
    if kind in _loaded:
        return _loaded[kind]
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; kinds are: {', '.join(GROUPS)}")
    group = _Group()
    for ep, dist_name, version, incompatible in _entry_points(GROUPS[kind]):
        entry = Entry(kind, ep.name, ep.value, dist_name, version)
        if incompatible:
            entry.error = f"incompatible: {incompatible}"
        else:
            try:
                entry.obj = ep.load()
            except Exception as error:  # noqa: BLE001 - any failure of a plugin is reported, never fatal
                entry.error = f"{type(error).__name__}: {error}"
            else:
                if (reason := api_error(entry.obj)) is not None:
                    entry.obj, entry.error = None, f"incompatible: {reason}"
        previous = group.entries.get(ep.name)
        if previous is not None and previous.value != entry.value:
            group.conflicts.setdefault(ep.name, [previous]).append(entry)
        group.entries.setdefault(ep.name, entry)
    _loaded[kind] = group
    return group


def load_all() -> None:
    """Import every plugin of every group (the CLI does this before parsing, so short class names resolve)."""
    for kind in GROUPS:
        _load_group(kind)


def entries(kind: str | None = None) -> list[Entry]:
    """All entries, of one kind or of every kind, broken ones included."""
    kinds = [kind] if kind else list(GROUPS)
    return [e for k in kinds for e in _load_group(k).entries.values()] + [
        e for k in kinds for c in _load_group(k).conflicts.values() for e in c[1:]
    ]



def available(kind: str) -> list[str]:
    """Names of the entries of `kind` that loaded."""
    return sorted(name for name, e in _load_group(kind).entries.items() if e.ok)


def registered_classes(name: str | None = None) -> list[type]:
    """The classes registered under the short `name` in any group, or every registered class when `name` is None
    (plugins that failed to load left out)."""
    found = []
    for kind in GROUPS:
        group = _load_group(kind).entries
        for entry in group.values() if name is None else [group.get(name)]:
            if entry is not None and entry.ok and isinstance(entry.obj, type) and entry.obj not in found:
                found.append(entry.obj)
    return found


def get(kind: str, name: str) -> Any:
    """The object registered as `name` in group `kind`.

    Raises:
        PluginError: when the name is unknown (the message lists what is available), registered by two
            distributions (naming both), or its plugin failed to import (with that error).
    """
    group = _load_group(kind)
    if name in group.conflicts:
        who = ", ".join(f"{e.distribution} {e.version} ({e.value})" for e in group.conflicts[name])
        raise PluginError(f"{kind} {name!r} is registered by more than one distribution: {who}")
    entry = group.entries.get(name)
    if entry is None:
        raise PluginError(f"unknown {kind[:-1] if kind.endswith('s') else kind} {name!r}; "
                          f"available: {', '.join(available(kind)) or '(none)'}")
    if not entry.ok:
        raise PluginError(f"{kind} {name!r} from {entry.distribution} failed to load: {entry.error}")
    return entry.obj


def find_class(name: str) -> type:
    """Resolve a short class name in whichever group has it (problems, modules, nets, ...)."""
    for kind in GROUPS:
        group = _load_group(kind)
        if name in group.entries or name in group.conflicts:
            return get(kind, name)
    raise PluginError(f"no registered class named {name!r}; registered: "
                      f"{', '.join(sorted({n for k in GROUPS for n in available(k)}))}")


def reset() -> None:
    """Forget what was loaded (tests install and remove plugins)."""
    _loaded.clear()
