"""Disk cache for expensive reference arrays.

Reference solutions (for example the Cole-Hopf Burgers solution) take seconds
to compute but are requested by every test run and training job, so they are
stored once as ``.npz`` files under :func:`cache_dir` and keyed by the exact
parameters that produced them.

The cache is bounded: after each write, the least recently used entries are
deleted until the entries together take at most ``$LPDE_CACHE_MAX_MB``
megabytes (default 1024; 0 keeps nothing). A hit marks its file as used
(its modification time is set to now), so eviction order does not depend on
whether the file system records access times. Only files this module wrote
(``<name>-<16 hex digits>.npz`` and its own stale temporaries) are ever
deleted, so ``$LPDE_CACHE_DIR`` may point at a directory shared with other
things.

A cache file is untrusted input: it is read with ``allow_pickle=False`` (no
code can run), and a file that cannot be read is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["cache_dir", "cache_max_bytes", "cached_array"]

_ENV_VAR = "LPDE_CACHE_DIR"
_MAX_MB_VAR = "LPDE_CACHE_MAX_MB"
_DEFAULT_MAX_MB = 1024.0
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# 16 hex digits = 64 bits: collisions are irrelevant for a per-user cache and
# the file names stay readable.
_DIGEST_LENGTH = 16
# What _cache_key + ".npz" produces, and what _write_atomically leaves behind
# when the process is killed mid-write: the only files eviction may delete.
_ENTRY_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]*-[0-9a-f]{{{_DIGEST_LENGTH}}}\.npz")
_TEMPORARY_PATTERN = re.compile(rf"\.[A-Za-z0-9][A-Za-z0-9_.-]*-[0-9a-f]{{{_DIGEST_LENGTH}}}-.*\.tmp")
# A temporary this old belongs to a writer that died; a live one finishes in seconds.
_STALE_TEMPORARY_SECONDS = 3600.0


def cache_dir() -> Path:
    """Return the cache directory, creating it if needed.

    The directory is ``$LPDE_CACHE_DIR`` when that variable is set and not
    empty, otherwise ``~/.cache/lightning_pde``.

    Returns:
        Path to an existing directory.
    """
    configured = os.environ.get(_ENV_VAR)
    if configured:
        path = Path(configured).expanduser()
    else:
        path = Path.home() / ".cache" / "lightning_pde"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_max_bytes() -> int:
    """Return the size cap of the cache in bytes: ``$LPDE_CACHE_MAX_MB`` megabytes (10**6 bytes) when that
    variable is set and not empty, otherwise 1024 MB. 0 disables caching (nothing is kept on disk).

    Raises:
        ValueError: when the variable is not a finite number >= 0.
    """
    configured = os.environ.get(_MAX_MB_VAR, "").strip()
    if not configured:
        return int(_DEFAULT_MAX_MB * 1e6)
    try:
        megabytes = float(configured)
    except ValueError:
        megabytes = math.nan
    if not math.isfinite(megabytes) or megabytes < 0:
        raise ValueError(f"{_MAX_MB_VAR} must be a number of megabytes >= 0, got {configured!r}")
    return int(megabytes * 1e6)


def _canonical(value: Any) -> Any:
    """Map ``value`` to plain JSON data in which every float is spelled exactly.

    Floats become tagged ``float.hex`` strings so that 0.1 and
    0.1 + 1e-17 (different doubles) never share a key and a float can never
    collide with a string or an int parameter.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            # Every NaN payload means the same thing to the computation.
            return {"float": "nan"}
        return {"float": value.hex()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError(f"cached_array: params keys must be strings, got {list(value)!r}")
        return {key: _canonical(item) for key, item in value.items()}
    raise TypeError(
        "cached_array: params may only contain None, bool, int, float, str, lists, tuples "
        f"and dicts with string keys, got {type(value).__name__} ({value!r})"
    )


def _cache_key(name: str, params: dict) -> str:
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            "cached_array: name must be a non-empty file-name-safe string "
            f"(letters, digits, '_', '.', '-'), got {name!r}"
        )
    if not isinstance(params, dict):
        raise TypeError(f"cached_array: params must be a dict, got {type(params).__name__}")
    text = json.dumps(_canonical(params), sort_keys=True, separators=(",", ":"), allow_nan=False)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:_DIGEST_LENGTH]
    return f"{name}-{digest}"


def _load(path: Path) -> dict[str, np.ndarray] | None:
    """Read a cache file; ``None`` if it is missing or unreadable (warns if unreadable)."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        warnings.warn(
            f"cached_array: ignoring unreadable cache file {path} ({error}); recomputing it",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` so that readers only ever see a complete file.

    The data goes to a temporary file in the same directory (``os.replace`` is
    only atomic within one file system) and is renamed over ``path`` at the end.
    """
    handle = tempfile.NamedTemporaryFile(
        mode="wb", dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp", delete=False
    )
    try:
        with handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        try:
            os.unlink(handle.name)
        except FileNotFoundError:
            pass
        raise


def _mark_used(path: Path) -> None:
    """Record a hit for least-recently-used eviction (a read-only cache just keeps its order)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _evict(directory: Path, max_bytes: int, keep: Path | None = None) -> None:
    """Delete the least recently used cache entries until the rest take at most ``max_bytes``.

    `keep` (the entry just written) goes last, only when it alone exceeds the
    cap. Files that other processes delete meanwhile are skipped.
    """
    now = time.time()
    entries = []
    for path in directory.iterdir():
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if _TEMPORARY_PATTERN.fullmatch(path.name) and now - info.st_mtime > _STALE_TEMPORARY_SECONDS:
            path.unlink(missing_ok=True)
        elif _ENTRY_PATTERN.fullmatch(path.name):
            entries.append((path == keep, info.st_mtime, info.st_size, path))
    total = sum(size for _, _, size, _ in entries)
    for _, _, size, path in sorted(entries):  # others before `keep`, oldest use first
        if total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size


def cached_array(
    name: str, params: dict, compute: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Return ``compute()``, reusing a copy stored on disk when there is one.

    The file is ``<cache_dir()>/<name>-<digest>.npz`` where ``digest`` is the
    first 16 hex digits of the SHA-256 of ``params`` as canonical JSON (sorted
    keys, floats written exactly with ``float.hex``). A file that cannot be
    read is recomputed and overwritten with a warning. New files are written
    atomically, so concurrent processes never read half-written data. After a
    write, least recently used entries are evicted to keep the cache within
    :func:`cache_max_bytes` (``$LPDE_CACHE_MAX_MB``).

    Args:
        name: File-name-safe label, e.g. ``"burgers_cole_hopf"``.
        params: Every input that determines the result; JSON-like values only
            (None, bool, int, float, str, list, tuple, dict with str keys).
        compute: Called without arguments on a cache miss; returns a mapping
            from array name to array (any shapes and numeric dtypes, no
            object arrays).

    Returns:
        Mapping from array name to array, with the same names, shapes and
        dtypes as ``compute()`` returned.
    """
    path = cache_dir() / f"{_cache_key(name, params)}.npz"
    max_bytes = cache_max_bytes()
    cached = _load(path)
    if cached is not None:
        _mark_used(path)
        return cached
    result = compute()
    if not isinstance(result, dict) or not all(isinstance(key, str) for key in result):
        raise TypeError(
            f"cached_array: compute for {name!r} must return a dict with string keys, "
            f"got {type(result).__name__}"
        )
    arrays = {key: np.asarray(value) for key, value in result.items()}
    if max_bytes > 0:
        _write_atomically(path, arrays)
    _evict(path.parent, max_bytes, keep=path)
    return arrays
