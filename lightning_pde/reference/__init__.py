"""Numerical reference solutions used to evaluate learned PDE solvers."""

from .allen_cahn import (
    allen_cahn_initial_condition,
    allen_cahn_reference,
    allen_cahn_spectral,
)
from .burgers import burgers_reference, cole_hopf_burgers
from .cache import cache_dir, cached_array
from .klein_gordon import klein_gordon_method_of_lines, klein_gordon_reference
from .table import read_table

__all__ = [
    "burgers_reference",
    "cache_dir",
    "cached_array",
    "cole_hopf_burgers",
    "allen_cahn_initial_condition",
    "allen_cahn_reference",
    "allen_cahn_spectral",
    "klein_gordon_method_of_lines",
    "klein_gordon_reference",
    "read_table",
]
