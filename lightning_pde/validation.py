"""Argument checks that raise errors for people: ``Burgers: nu must be a finite number > 0, got -1``.

Every constructor and solver validates its arguments with these, at construction, so a bad value is named before
any work starts. `owner` is the class or function the user called; numpy scalars count as numbers, bools do not.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def finite_float(owner: str, name: str, value: object) -> float:
    """`value` as a float if it is a finite number."""
    if not _is_real(value):
        raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}")
    return float(value)


def positive_float(owner: str, name: str, value: object, maximum: float | None = None) -> float:
    """`value` as a float if it is a finite number > 0 (and <= `maximum`, where squares or exponentials of it must
    stay finite)."""
    if not _is_real(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{owner}: {name} must be a number in (0, {maximum:g}], got {value!r}")
    return float(value)


def nonnegative_float(owner: str, name: str, value: object) -> float:
    """`value` as a float if it is a finite number >= 0."""
    if not _is_real(value) or value < 0:
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def integer_at_least(owner: str, name: str, value: object, minimum: int) -> int:
    """`value` as an int if it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_int(owner: str, name: str, value: object) -> int:
    """`value` as an int if it is an integer >= 1."""
    return integer_at_least(owner, name, value, 1)


def finite_1d(owner: str, name: str, values: object) -> np.ndarray:
    """`values` as a 1-D float64 array of finite numbers, shape (n,)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{owner}: {name} must be a 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{owner}: {name} must be finite, got {array[~np.isfinite(array)][:3]}")
    return array


def boolean(owner: str, name: str, value: object) -> bool:
    """`value` if it is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be true or false, got {value!r}")
    return bool(value)


def integer_list(owner: str, name: str, values: object, minimum: int = 1) -> list[int]:
    """`values` as a non-empty list of integers >= `minimum`."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum for v in values):
        raise ValueError(f"{owner}: {name} must be a non-empty list of integers >= {minimum}, got {values!r}")
    return [int(v) for v in values]


def name_list(owner: str, name: str, values: object, allow_empty: bool = False) -> list[str]:
    """`values` as a list of non-empty strings (input or condition names), non-empty unless `allow_empty`."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not (values or allow_empty) or any(
            not isinstance(v, str) or not v for v in values):
        raise ValueError(f"{owner}: {name} must be a {'' if allow_empty else 'non-empty '}list of names, "
                         f"got {values!r}")
    return list(values)


def nonempty_str(owner: str, name: str, value: object) -> str:
    """`value` if it is a non-empty string (a file name, an input or condition name)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{owner}: {name} must be a non-empty string, got {value!r}")
    return value
