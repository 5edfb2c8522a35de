"""Reference solutions from files: whitespace tables as COMSOL exports them (``%`` header lines), read as untrusted
input (plain numbers only; nothing in the file is executed or unpickled)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def read_table(path: str | Path, columns: int | None = None) -> Tensor:
    """The numbers of a whitespace-separated text table as a float64 tensor (rows, cols).

    Lines starting with ``%`` (COMSOL's headers) and blank lines are skipped; every other line must hold the same
    number of finite numbers.

    Args:
        path: the file.
        columns: the number of columns the caller expects; a file with another number is an error.

    Raises:
        ValueError: naming the file and what is wrong with it (missing, empty, ragged, not numbers, nan/inf, wrong
            column count).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"read_table: no such file {str(path)!r}")
    try:
        with warnings.catch_warnings():  # an empty file is our error below, not numpy's warning
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, comments="%", dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise ValueError(f"read_table: {str(path)!r} is not a table of numbers (whitespace-separated, '%' comment "
                         f"lines): {error}") from None
    if table.size == 0:
        raise ValueError(f"read_table: {str(path)!r} holds no numbers")
    if not np.isfinite(table).all():
        raise ValueError(f"read_table: {str(path)!r} contains nan or inf")
    if columns is not None and table.shape[1] != columns:
        raise ValueError(f"read_table: {str(path)!r} has {table.shape[1]} columns, expected {columns}")
    return torch.from_numpy(table)
