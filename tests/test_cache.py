"""The reference-array cache stays within its size cap, evicts the least recently used entries, deletes only its own
files, and treats what it reads as untrusted."""

import os
import time

import numpy as np
import pytest

from lightning_pde.reference.cache import cache_max_bytes, cached_array


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("LPDE_CACHE_DIR", str(directory))
    monkeypatch.delenv("LPDE_CACHE_MAX_MB", raising=False)
    return directory


def entry(name: str, n: int = 1000):
    """Cache `name` (an n-float64 array, n * 8 bytes plus the .npz overhead); return its file."""
    cached_array(name, {"n": n}, lambda: {"v": np.arange(n, dtype=np.float64)})
    (path,) = (p for p in os.scandir(os.environ["LPDE_CACHE_DIR"]) if p.name.startswith(f"{name}-"))
    return path.path


def used(path: str, seconds_ago: float) -> None:
    moment = time.time() - seconds_ago
    os.utime(path, (moment, moment))


def names(directory) -> set[str]:
    return {p.name.split("-")[0] for p in directory.iterdir()}


def test_least_recently_used_entries_are_evicted_beyond_the_cap(cache, monkeypatch):
    monkeypatch.setenv("LPDE_CACHE_MAX_MB", "0.02")  # room for two 8.3 kB entries, not three
    used(entry("a"), 300)
    used(entry("b"), 200)
    # a hit makes "a" the most recently used, so the third entry pushes out "b"
    calls = []
    cached_array("a", {"n": 1000}, lambda: calls.append(1) or {"v": np.zeros(1)})
    assert not calls
    entry("c")
    assert names(cache) == {"a", "c"}
    assert sum(p.stat().st_size for p in cache.iterdir()) <= cache_max_bytes()


def test_an_entry_larger_than_the_cap_is_returned_but_not_kept(cache, monkeypatch):
    monkeypatch.setenv("LPDE_CACHE_MAX_MB", "0.001")
    result = cached_array("big", {"n": 1000}, lambda: {"v": np.arange(1000.0)})
    assert result["v"].shape == (1000,)
    assert list(cache.iterdir()) == []


def test_zero_keeps_nothing(cache, monkeypatch):
    entry("old")
    monkeypatch.setenv("LPDE_CACHE_MAX_MB", "0")
    calls = []
    for _ in range(2):
        cached_array("x", {}, lambda: calls.append(1) or {"v": np.ones(3)})
    assert len(calls) == 2 and list(cache.iterdir()) == []


def test_eviction_deletes_only_the_caches_own_files(cache, monkeypatch):
    # LPDE_CACHE_DIR may point at a directory with other things in it
    entry("a")
    cache.joinpath("notes.txt").write_text("mine")
    cache.joinpath("results.npz").write_bytes(b"mine")
    cache.joinpath("model-0123456789abcdef.ckpt").write_bytes(b"mine")
    stale = cache / ".a-0123456789abcdef-xyz.tmp"  # left by a writer that was killed
    fresh = cache / ".b-0123456789abcdef-xyz.tmp"  # a writer still at work
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    used(stale, 2 * 3600)
    monkeypatch.setenv("LPDE_CACHE_MAX_MB", "0")
    cached_array("b", {}, lambda: {"v": np.ones(3)})
    assert sorted(p.name for p in cache.iterdir()) == [fresh.name, "model-0123456789abcdef.ckpt", "notes.txt",
                                                        "results.npz"]


@pytest.mark.parametrize("value", ["-1", "lots", "nan", "inf"])
def test_a_bad_cap_names_the_variable(cache, monkeypatch, value):
    monkeypatch.setenv("LPDE_CACHE_MAX_MB", value)
    with pytest.raises(ValueError, match=f"LPDE_CACHE_MAX_MB must be a number of megabytes >= 0, got '{value}'"):
        cached_array("x", {}, lambda: {"v": np.ones(3)})


def test_default_cap_is_a_gigabyte(cache):
    assert cache_max_bytes() == 1024 * 10**6


class Payload:
    """An object whose unpickling would run a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_planted_in_the_cache_is_not_run_but_recomputed(cache, tmp_path):
    path = entry("planted")
    marker = tmp_path / "MARKER"
    with open(path, "wb") as handle:
        np.savez(handle, v=np.array([Payload(marker)], dtype=object))
    with pytest.warns(RuntimeWarning, match="unreadable cache file"):
        result = cached_array("planted", {"n": 1000}, lambda: {"v": np.arange(1000, dtype=np.float64)})
    assert not marker.exists()
    assert result["v"].dtype == np.float64
    np.testing.assert_array_equal(np.load(path, allow_pickle=False)["v"], np.arange(1000.0))
