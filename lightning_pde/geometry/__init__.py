"""Geometry: the domains of problems, their sampling, boundary parts and outward normals.

Primitives (:class:`Interval`, :class:`Rectangle` = :class:`Box`, :class:`Disk`, :class:`Ball`, :class:`Polygon`)
combine with ``a | b``, ``a - b`` and ``a & b`` into shapes that are geometries like the others, and
``geometry * Interval(t0, t1)`` is a space-time cylinder whose last input is time. Every geometry has `dim`, a float64
bounding box `lower`/`upper` (the PINN normalises its inputs with it), ``sample`` (interior, uniform by volume),
``sample_boundary`` (uniform by boundary measure, optionally only where a predicate holds: an inlet, the holes),
``normal``, ``contains`` and ``on_boundary``.

Sampling contract: points are float64 on the CPU, drawn from a seeded `torch.Generator` (i.i.d. uniform or
scrambled Sobol), exactly `n` of them, and the same generator state gives the same points. Every DDP rank therefore
draws the same global set from the same seed and the data module keeps each rank's shard (`lightning_pde.data`);
nothing here knows about ranks. Shapes that are not primitives draw by rejection, continuing one stream until `n`
points are kept, and raise a ValueError instead of looping when almost nothing is kept.
"""

from lightning_pde.geometry.base import BOUNDARY_TOLERANCE, SAMPLING_METHODS, Geometry, unit_cube
from lightning_pde.geometry.csg import Difference, Intersection, SetOperation, Union
from lightning_pde.geometry.primitives import (Ball, Box, Disk, Interval, Polygon, Rectangle, ball_from_cube,
                                               sphere_from_cube)
from lightning_pde.geometry.spacetime import BallTime, SpaceTime

__all__ = ["BOUNDARY_TOLERANCE", "SAMPLING_METHODS", "Ball", "BallTime", "Box", "Difference", "Disk", "Geometry",
           "Intersection", "Interval", "Polygon", "Rectangle", "SetOperation", "SpaceTime", "Union", "ball_from_cube",
           "sphere_from_cube", "unit_cube"]
