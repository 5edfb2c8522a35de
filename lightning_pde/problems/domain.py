"""Domains of the built-in problems: the shapes now live in :mod:`lightning_pde.geometry`, re-exported here so that
``from lightning_pde.problems.domain import Box`` keeps working. Points are float64 on the CPU, drawn from a seeded
`torch.Generator`, so every DDP rank draws the same global set and keeps its own shard (see `lightning_pde.data`)."""

from lightning_pde.geometry import (SAMPLING_METHODS, Ball, BallTime, Box, Disk, Interval, Polygon, Rectangle,
                                    SpaceTime, ball_from_cube, sphere_from_cube, unit_cube)

__all__ = ["SAMPLING_METHODS", "Ball", "BallTime", "Box", "Disk", "Interval", "Polygon", "Rectangle", "SpaceTime",
           "ball_from_cube", "sphere_from_cube", "unit_cube"]
