"""lightning_pde.geometry: uniform sampling on shapes built by set operations, boundary parts, outward normals,
space-time cylinders, clear errors, and the exact points the built-in problems sampled before the package existed."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import chi2

from lightning_pde.geometry import (Ball, BallTime, Box, Difference, Disk, Interval, Polygon, Rectangle, SpaceTime,
                                    Union)
from lightning_pde.problems import domain


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def plate_with_holes():
    """The unit square minus four disks of radius 0.1 centred at (0.25 | 0.75, 0.25 | 0.75)."""
    plate = Rectangle([0.0, 0.0], [1.0, 1.0])
    holes = [Disk([x, y], 0.1) for x in (0.25, 0.75) for y in (0.25, 0.75)]
    for hole in holes:
        plate = plate - hole
    return plate, holes


CONCAVE = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [1.0, 0.8], [0.0, 2.0]]  # an arrow head, one reflex vertex


def shapes():
    return {
        "plate_with_holes": plate_with_holes()[0],
        "polygon": Polygon(CONCAVE),
        "union_of_disks": Disk([0.0, 0.0], 1.0) | Disk([1.0, 0.0], 1.0),
        "annulus": Disk([0.0, 0.0], 1.0) - Disk([0.0, 0.0], 0.5),
        "lens": Disk([0.0, 0.0], 1.0) & Disk([1.0, 0.0], 1.0),
        "l_shape": Rectangle([0.0, 0.0], [2.0, 2.0]) - Rectangle([1.0, 0.0], [2.0, 1.0]),
    }


# -- backward compatibility: the points lightning_pde/problems/domain.py drew before this package ------------------
# A verbatim copy of the old samplers. The README's accuracy numbers were measured on exactly these points.
def old_unit_cube(n, dim, generator, method="uniform"):
    if method == "uniform":
        return torch.rand(n, dim, generator=generator, dtype=torch.float64)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed).draw(n, dtype=torch.float64)


def old_box_sample(lower, upper, n, generator, method):
    lower, upper = torch.tensor(lower, dtype=torch.float64), torch.tensor(upper, dtype=torch.float64)
    return lower + (upper - lower) * old_unit_cube(n, len(lower), generator, method)


def old_box_sample_face(lower, upper, n, axis, side, generator, method):
    points = old_box_sample(lower, upper, n, generator, method)
    points[:, axis] = (lower if side == "lower" else upper)[axis]
    return points


def old_box_sample_faces(lower, upper, n, faces, generator, method):
    extent = torch.tensor(upper, dtype=torch.float64) - torch.tensor(lower, dtype=torch.float64)
    areas = torch.tensor([float(extent.prod() / extent[axis]) for axis, _ in faces], dtype=torch.float64)
    counts = torch.floor(n * areas / areas.sum()).long()
    counts[: n - int(counts.sum())] += 1
    return torch.cat([old_box_sample_face(lower, upper, int(c), axis, side, generator, method)
                      for c, (axis, side) in zip(counts, faces)])


def old_box_grid(lower, upper, shape):
    axes = [torch.linspace(float(lo), float(hi), int(s), dtype=torch.float64) for lo, hi, s in zip(lower, upper, shape)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(lower))


def old_sphere_from_cube(cube, radius=1.0):
    normal = torch.special.ndtri(cube.clamp(torch.finfo(torch.float64).tiny, 1 - 2.0**-53))
    norm = torch.linalg.vector_norm(normal, dim=1, keepdim=True)
    e1 = torch.zeros_like(normal[:1])
    e1[0, 0] = 1.0
    direction = torch.where(norm > 0, normal / norm.clamp_min(torch.finfo(torch.float64).tiny), e1)
    return radius * direction


def old_ball_from_cube(cube, radius=1.0):
    dim = cube.shape[1] - 1
    return old_sphere_from_cube(cube[:, :dim]) * (radius * cube[:, dim:] ** (1.0 / dim))


def old_ball_time(kind, dim, radius, t0, t1, n, generator, method):
    def time(column):
        return t0 + (t1 - t0) * column

    if kind == "sample":
        cube = old_unit_cube(n, dim + 2, generator, method)
        return torch.cat([old_ball_from_cube(cube[:, :-1], radius), time(cube[:, -1:])], dim=1)
    if kind == "sample_initial":
        x = old_ball_from_cube(old_unit_cube(n, dim + 1, generator, method), radius)
        return torch.cat([x, torch.full((n, 1), t0, dtype=torch.float64)], dim=1)
    cube = old_unit_cube(n, dim + 1, generator, method)
    return torch.cat([old_sphere_from_cube(cube[:, :-1], radius), time(cube[:, -1:])], dim=1)


def bit_equal(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.view(torch.int64), b.view(torch.int64))


@pytest.mark.parametrize("method", ["uniform", "sobol"])
def test_box_ball_and_balltime_draw_the_points_they_drew_before(method):
    for lower, upper in (([0.0], [1.0]), ([-1.0, 0.0], [1.0, 2.0]), ([0.0] * 5, [1.0, 2.0, 3.0, 4.0, 5.0])):
        box = domain.Box(lower, upper)
        faces = [(axis, side) for axis in range(len(lower)) for side in ("lower", "upper")]
        for n in (1, 37, 1000):
            assert bit_equal(box.sample(n, seeded(n), method), old_box_sample(lower, upper, n, seeded(n), method))
            assert bit_equal(box.sample_face(n, len(lower) - 1, "upper", seeded(n), method),
                             old_box_sample_face(lower, upper, n, len(lower) - 1, "upper", seeded(n), method))
            if n > 1:  # (the old code failed on a face given no points when sampling Sobol)
                assert bit_equal(box.sample_faces(n * len(faces), faces, seeded(n), method),
                                 old_box_sample_faces(lower, upper, n * len(faces), faces, seeded(n), method))
        assert bit_equal(box.grid([4] * len(lower)), old_box_grid(lower, upper, [4] * len(lower)))
        assert bit_equal(box.lower, torch.tensor(lower, dtype=torch.float64))
    for dim in (1, 2, 5, 100):
        for radius in (1.0, 2.5):
            ball, cylinder = domain.Ball(dim, radius=radius), domain.BallTime(dim, radius, 0.1, 1.7)
            assert bit_equal(ball.lower, torch.full((dim,), -radius, dtype=torch.float64))
            assert bit_equal(cylinder.upper, torch.tensor([radius] * dim + [1.7], dtype=torch.float64))
            for n in (1, 37, 1000):
                assert bit_equal(ball.sample(n, seeded(n), method),
                                 old_ball_from_cube(old_unit_cube(n, dim + 1, seeded(n), method), radius))
                assert bit_equal(ball.sample_sphere(n, seeded(n), method),
                                 old_sphere_from_cube(old_unit_cube(n, dim, seeded(n), method), radius))
                for kind in ("sample", "sample_initial", "sample_boundary"):
                    assert bit_equal(getattr(cylinder, kind)(n, seeded(n), method),
                                     old_ball_time(kind, dim, radius, 0.1, 1.7, n, seeded(n), method)), kind


def test_the_old_import_path_names_the_geometry_classes():
    assert domain.Box is Box is Rectangle and domain.Ball is Ball and domain.BallTime is BallTime
    assert domain.SAMPLING_METHODS == ("uniform", "sobol")
    assert isinstance(BallTime(2), SpaceTime) and BallTime(2).ball.dim == 2 and BallTime(2).space_dim == 2


# -- interior sampling: uniform by area ------------------------------------------------------------------------------
def cell_probabilities(geometry, cells=8, fine=1000):
    """Share of the shape's area in each of cells x cells cells of its bounding box (midpoint rule, fine^2 points)."""
    u = (torch.arange(fine, dtype=torch.float64) + 0.5) / fine
    grid = torch.stack(torch.meshgrid(u, u, indexing="ij"), dim=-1).reshape(-1, 2)
    inside = geometry.contains(geometry.lower + (geometry.upper - geometry.lower) * grid)
    index = (grid * cells).long().clamp_max(cells - 1)
    return torch.bincount((index[:, 0] * cells + index[:, 1])[inside], minlength=cells**2).double() / inside.sum()


def cell_counts(geometry, points, cells=8):
    index = ((points - geometry.lower) / (geometry.upper - geometry.lower) * cells).long().clamp(0, cells - 1)
    return torch.bincount(index[:, 0] * cells + index[:, 1], minlength=cells**2).double()


def chi_square(observed, expected):
    used = expected > 5
    return float(((observed - expected)[used] ** 2 / expected[used]).sum()), int(used.sum()) - 1


@pytest.mark.parametrize("name", ["plate_with_holes", "polygon", "union_of_disks", "annulus", "lens", "l_shape"])
def test_interior_points_are_uniform_by_area(name):
    geometry, n = shapes()[name], 20000
    expected = n * cell_probabilities(geometry)
    uniform = geometry.sample(n, seeded(1))
    assert uniform.shape == (n, 2) and uniform.dtype == torch.float64 and bool(geometry.contains(uniform).all())
    statistic, df = chi_square(cell_counts(geometry, uniform), expected)
    assert chi2.sf(statistic, df) > 1e-3, (statistic, df)
    # Sobol points, rejected the same way, fill the cells far more evenly than i.i.d. ones (chi-square << df)
    sobol = geometry.sample(n, seeded(1), "sobol")
    assert sobol.shape == (n, 2) and bool(geometry.contains(sobol).all())
    assert chi_square(cell_counts(geometry, sobol), expected)[0] < 0.2 * df


def test_annulus_moments_match_the_uniform_distribution():
    annulus = Disk([0.5, -1.0], 1.0) - Disk([0.5, -1.0], 0.5)
    points = annulus.sample(40000, seeded(2)) - torch.tensor([0.5, -1.0], dtype=torch.float64)
    r2 = points.square().sum(dim=1)
    # density in r proportional to r on [0.5, 1]: E r^2 = (R^2 + r^2) / 2, std of r^2 about 0.2
    assert abs(float(r2.mean()) - (1 + 0.25) / 2) < 4 * 0.2 / math.sqrt(40000)
    assert points.mean(dim=0).abs().max() < 4 * 0.8 / math.sqrt(40000)


def test_polygon_is_the_same_set_in_either_orientation():
    ccw, cw = Polygon(CONCAVE), Polygon(CONCAVE[::-1])
    x = Rectangle([-0.5, -0.5], [2.5, 2.5]).sample(5000, seeded(3))
    assert torch.equal(ccw.contains(x), cw.contains(x))
    boundary = ccw.sample_boundary(500, seeded(3))
    assert torch.allclose(ccw.normal(boundary), cw.normal(boundary))
    assert abs(ccw.area - 2.0 * 2.0 + 0.5 * 2.0 * 1.2) < 1e-12  # square minus the notch triangle (base 2, height 1.2)


# -- boundary sampling: uniform by boundary measure ------------------------------------------------------------------
def test_boundary_points_split_between_plate_and_holes_by_length():
    plate, holes = plate_with_holes()
    n = 20000
    points = plate.sample_boundary(n, seeded(4))
    assert points.shape == (n, 2) and bool(plate.on_boundary(points).all())
    on_hole = torch.stack([hole.on_boundary(points) for hole in holes])
    on_square = Rectangle([0.0, 0.0], [1.0, 1.0]).on_boundary(points)
    assert bool((on_hole.sum(dim=0) + on_square == 1).all())  # every point on exactly one part
    share = 4 * 2 * math.pi * 0.1 / (4 + 4 * 2 * math.pi * 0.1)
    assert abs(float(on_hole.any(dim=0).double().mean()) - share) < 4 * math.sqrt(share * (1 - share) / n)
    # the holes equally, and each uniformly in angle
    per_hole = on_hole.sum(dim=1).double()
    assert chi2.sf(*chi_square(per_hole, torch.full((4,), float(per_hole.sum()) / 4))) > 1e-3
    centre = torch.tensor([0.25, 0.25], dtype=torch.float64)
    first = points[on_hole[0]] - centre
    angle = torch.atan2(first[:, 1], first[:, 0])
    counts = torch.histc(angle, bins=12, min=-math.pi, max=math.pi)
    assert chi2.sf(*chi_square(counts, torch.full((12,), len(first) / 12))) > 1e-3
    # the square's sides equally, each uniformly along its length
    side = points[on_square]
    bottom = side[side[:, 1] == 0.0][:, 0]
    assert abs(len(bottom) / len(side) - 0.25) < 4 * math.sqrt(0.25 * 0.75 / len(side))
    assert chi2.sf(*chi_square(torch.histc(bottom, bins=10, min=0, max=1), torch.full((10,), len(bottom) / 10))) > 1e-3


def test_annulus_boundary_split_by_circumference_and_sobol_too():
    annulus = Disk([0.0, 0.0], 1.0) - Disk([0.0, 0.0], 0.5)
    for method in ("uniform", "sobol"):
        points = annulus.sample_boundary(12000, seeded(5), method)
        radius = torch.linalg.vector_norm(points, dim=1)
        inner = (radius - 0.5).abs() < 1e-12
        assert bool((inner | ((radius - 1).abs() < 1e-12)).all())
        assert abs(float(inner.double().mean()) - 1 / 3) < 4 * math.sqrt(2 / 9 / 12000)


def test_union_boundary_leaves_out_what_is_inside_the_other_disk():
    left, right = Disk([0.0, 0.0], 1.0), Disk([1.0, 0.0], 1.0)
    points = (left | right).sample_boundary(8000, seeded(6))
    on_left = left.on_boundary(points)
    assert bool((on_left ^ right.on_boundary(points)).all())
    assert bool((left._sdf(points[~on_left]) > 0).all()) and bool((right._sdf(points[on_left]) > 0).all())
    # each disk keeps 4 pi / 3 of its circle
    assert abs(float(on_left.double().mean()) - 0.5) < 4 * math.sqrt(0.25 / 8000)


def test_polygon_boundary_split_between_edges_by_length():
    polygon = Polygon(CONCAVE)
    points = polygon.sample_boundary(10000, seeded(7))
    a = torch.tensor(CONCAVE, dtype=torch.float64)
    edges = a.roll(-1, 0) - a
    lengths = torch.linalg.vector_norm(edges, dim=1)
    # distance of every point to every edge; each point lies on one
    along = (((points[:, None] - a) * edges).sum(dim=2) / lengths**2).clamp(0, 1)
    distance = torch.linalg.vector_norm(points[:, None] - a - along[..., None] * edges, dim=2)
    assert bool((distance.min(dim=1).values < 1e-12).all())
    edge = distance.argmin(dim=1)
    counts = torch.bincount(edge, minlength=5).double()
    assert chi2.sf(*chi_square(counts, 10000 * lengths / lengths.sum())) > 1e-3
    # and uniformly along each edge
    position = along[torch.arange(len(points)), edge]
    assert chi2.sf(*chi_square(torch.histc(position, bins=10, min=0, max=1), torch.full((10,), 1000.0))) > 1e-3


def test_faces_shared_by_touching_parts_are_not_boundary():
    # the unit square twice, side by side: x = 1 is inside the union
    union = Rectangle([0.0, 0.0], [1.0, 1.0]) | Rectangle([1.0, 0.0], [2.0, 1.0])
    points = union.sample_boundary(4000, seeded(8))
    assert not bool(((points[:, 0] - 1).abs() < 1e-9).any())
    assert abs(float((points[:, 1] == 0).double().mean()) - 2 / 6) < 4 * math.sqrt(2 / 9 / 4000)
    # a notch cut flush with two sides: the cut-away edges on y = 0 and x = 2 are gone, the result is an L
    l_shape = shapes()["l_shape"]
    as_polygon = Polygon([[0, 0], [1, 0], [1, 1], [2, 1], [2, 2], [0, 2]])
    points = l_shape.sample_boundary(8000, seeded(8))
    assert bool(as_polygon.on_boundary(points).all())
    assert abs(float((points[:, 0] == 0).double().mean()) - 2 / 8) < 4 * math.sqrt(3 / 16 / 8000)
    probe = torch.tensor([[1.0, 0.5], [0.5, 1.0], [1.5, 0.0], [2.0, 0.5], [1.0, 1.0], [0.0, 0.0], [1.5, 1.0]],
                         dtype=torch.float64)
    assert union.on_boundary(probe[:2]).tolist() == [False, True]
    assert l_shape.on_boundary(probe[2:]).tolist() == [False, False, True, True, True]
    assert torch.equal(l_shape.contains(probe[:2]), as_polygon.contains(probe[:2]))


def test_where_selects_exactly_the_requested_part():
    channel = Rectangle([0.0, 0.0], [4.0, 1.0]) - Disk([1.0, 0.5], 0.2)
    inlet = channel.sample_boundary(3000, seeded(9), where=lambda p: p[:, 0] == 0.0)
    assert inlet.shape == (3000, 2) and bool((inlet[:, 0] == 0).all())
    assert abs(float(inlet[:, 1].mean()) - 0.5) < 4 * math.sqrt(1 / 12 / 3000)
    assert abs(float(inlet[:, 1].var()) - 1 / 12) < 0.01
    hole = Disk([1.0, 0.5], 0.2)
    on_hole = channel.sample_boundary(2000, seeded(9), "sobol", where=hole.on_boundary)
    assert on_hole.shape == (2000, 2) and bool(hole.on_boundary(on_hole).all())
    normals = channel.normal(on_hole)
    assert torch.allclose(normals, -(on_hole - torch.tensor([1.0, 0.5], dtype=torch.float64)) / 0.2)  # into the hole
    walls = channel.sample_boundary(2000, seeded(9), where=lambda p: (p[:, 1] == 0) | (p[:, 1] == 1))
    assert bool(((walls[:, 1] == 0) | (walls[:, 1] == 1)).all())
    # the same part of the boundary of a cylinder over time, `where` seeing (x, y, t)
    cylinder = channel * Interval(0.0, 2.0)
    early_inlet = cylinder.sample_boundary(500, seeded(9), where=lambda p: (p[:, 0] == 0) & (p[:, 2] < 0.5))
    assert bool((early_inlet[:, 0] == 0).all()) and bool((early_inlet[:, 2] < 0.5).all())


def test_where_that_selects_nothing_is_an_error_not_a_hang():
    plate, _ = plate_with_holes()
    with pytest.raises(ValueError, match="where"):
        plate.sample_boundary(10, seeded(0), where=lambda p: p[:, 0] > 5)
    with pytest.raises(ValueError, match="where"):
        Disk([0.0, 0.0], 1.0).sample_boundary(10, seeded(0), where=lambda p: p[:, 0] > 5)
    with pytest.raises(ValueError, match="bool tensor"):
        plate.sample_boundary(10, seeded(0), where=lambda p: p[:, 0])
    with pytest.raises(ValueError, match="where"):
        plate.sample_boundary(10, seeded(0), where="inlet")


# -- normals ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["plate_with_holes", "polygon", "union_of_disks", "annulus", "lens", "l_shape"])
def test_normals_are_outward_unit_vectors(name):
    geometry = shapes()[name]
    points = geometry.sample_boundary(4000, seeded(10))
    normals = geometry.normal(points)
    assert normals.shape == (4000, 2) and normals.dtype == torch.float64
    assert torch.allclose(torch.linalg.vector_norm(normals, dim=1), torch.ones(4000, dtype=torch.float64))
    eps = 1e-5 * geometry.diameter
    assert bool(geometry.contains(points - eps * normals).all())
    assert not bool(geometry.contains(points + eps * normals).any())
    assert bool(geometry.on_boundary(points).all())
    assert not bool(geometry.on_boundary(points - eps * normals).any())


def test_primitive_normals_and_boundaries_in_three_dimensions():
    ball, box = Ball([1.0, 0.0, -1.0], 2.0), Box([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    for geometry in (ball, box, box - ball, box | ball):
        points = geometry.sample_boundary(2000, seeded(11))
        normals = geometry.normal(points)
        assert torch.allclose(torch.linalg.vector_norm(normals, dim=1), torch.ones(2000, dtype=torch.float64))
        assert bool(geometry.contains(points - 1e-6 * normals).all())
        assert not bool(geometry.contains(points + 1e-6 * normals).any())
    # box faces by area: the two faces x = 0 and x = 1 have area 12 of 22
    faces = box.sample_boundary(22000, seeded(11))
    share = float(((faces[:, 0] == 0) | (faces[:, 0] == 1)).double().mean())
    assert abs(share - 12 / 22) < 4 * math.sqrt(12 / 22 * 10 / 22 / 22000)
    assert torch.allclose(ball.normal(torch.tensor([[3.0, 0.0, -1.0]])), torch.tensor([[1.0, 0.0, 0.0]],
                                                                                         dtype=torch.float64))
    assert box.on_boundary(torch.tensor([[0.0, 0.0, 0.0], [0.5, 1.0, 1.5], [1.0, 2.0, 1e-12]])).tolist() == \
        [True, False, True]
    # tolerance: BOUNDARY_TOLERANCE (1e-9) times the bounding box's diagonal
    off = torch.tensor([[0.5, 1.0, 3.0 + 1e-10], [0.5, 1.0, 3.0 + 1e-7]], dtype=torch.float64)
    assert box.on_boundary(off).tolist() == [True, False] and box.contains(off).tolist() == [True, False]


# -- counts, determinism, Sobol, intervals ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["uniform", "sobol"])
def test_exact_counts_and_same_seed_same_points(method):
    for geometry in (*shapes().values(), Interval(-1.0, 2.0), Interval(0.0, 1.0) - Interval(0.2, 0.3),
                     Ball([0.0, 0.0, 0.0], 1.0) - Box([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])):
        for sampler in (geometry.sample, geometry.sample_boundary):
            for n in (0, 1, 37, 1000):
                points = sampler(n, seeded(12), method)
                assert points.shape == (n, geometry.dim) and points.dtype == torch.float64
                assert torch.equal(points, sampler(n, seeded(12), method))
            assert not torch.equal(sampler(50, seeded(12), method), sampler(50, seeded(13), method))


def test_interval_boundary_is_its_end_points():
    punctured = Interval(0.0, 1.0) - Interval(0.2, 0.3)
    ends = punctured.sample_boundary(4000, seeded(14))[:, 0]
    assert set(ends.tolist()) == {0.0, 0.2, 0.3, 1.0}
    for end in (0.0, 0.2, 0.3, 1.0):
        assert abs(float((ends == end).double().mean()) - 0.25) < 4 * math.sqrt(3 / 16 / 4000)
    assert punctured.normal(torch.tensor([[0.0], [0.2], [0.3], [1.0]])).flatten().tolist() == [-1, 1, -1, 1]
    inside = punctured.sample(4000, seeded(14))[:, 0]
    assert not bool(((inside > 0.2) & (inside < 0.3)).any())
    assert abs(float(inside.mean()) - (0.2 * 0.1 + 0.7 * 0.65) / 0.9) < 4 * 0.29 / math.sqrt(4000)


# -- space-time --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["uniform", "sobol"])
def test_space_time_cylinder(method):
    plate, holes = plate_with_holes()
    cylinder = plate * Interval(0.5, 2.5)
    assert isinstance(cylinder, SpaceTime) and cylinder.dim == 3 and cylinder.space_dim == 2
    assert cylinder.lower.tolist() == [0, 0, 0.5] and cylinder.upper.tolist() == [1, 1, 2.5]
    inside = cylinder.sample(6000, seeded(15), method)
    assert inside.shape == (6000, 3) and bool(plate.contains(inside[:, :2]).all())
    assert abs(float(inside[:, 2].mean()) - 1.5) < 4 * math.sqrt(4 / 12 / 6000)
    assert bool(cylinder.contains(inside).all())
    initial = cylinder.sample_initial(300, seeded(15), method)
    assert initial.shape == (300, 3) and bool((initial[:, 2] == 0.5).all())
    assert bool(plate.contains(initial[:, :2]).all())
    lateral = cylinder.sample_boundary(6000, seeded(15), method)
    assert bool(plate.on_boundary(lateral[:, :2]).all()) and bool(cylinder.on_boundary(lateral).all())
    assert bool(((lateral[:, 2] >= 0.5) & (lateral[:, 2] <= 2.5)).all())
    normals = cylinder.normal(lateral)
    assert bool((normals[:, 2] == 0).all()) and torch.allclose(normals[:, :2], plate.normal(lateral[:, :2]))
    share = 4 * 2 * math.pi * 0.1 / (4 + 4 * 2 * math.pi * 0.1)
    on_hole = torch.stack([hole.on_boundary(lateral[:, :2]) for hole in holes]).any(dim=0)
    assert abs(float(on_hole.double().mean()) - share) < 4 * math.sqrt(share * (1 - share) / 6000)
    assert not bool(cylinder.contains(torch.tensor([[0.5, 0.5, 2.6], [0.25, 0.25, 1.0]])).any())
    # a 1-D interval in time: its lateral boundary is x = a and x = b
    rod = Interval(-1.0, 1.0) * Interval(0.0, 1.0)
    assert bool((rod.sample_boundary(100, seeded(15), method)[:, 0].abs() == 1).all())


# -- errors -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: Disk([0.0, 0.0], -1.0), "radius"),
        (lambda: Disk([0.0, 0.0], 0.0), "radius"),
        (lambda: Disk([0.0, 0.0, 0.0], 1.0), "center"),
        (lambda: Ball([0.0, float("nan")], 1.0), "center"),
        (lambda: Ball([0.0, 0.0], float("inf")), "radius"),
        (lambda: Ball(0), "dim"),
        (lambda: Rectangle([0.0, 0.0], [1.0, 0.0]), "upper"),
        (lambda: Rectangle([0.0, 0.0], [1.0]), "lower"),
        (lambda: Interval(1.0, 1.0), "b"),
        (lambda: Interval(0.0, float("inf")), "b"),
        (lambda: Polygon([[0.0, 0.0], [1.0, 0.0]]), "vertices"),
        (lambda: Polygon([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]), "vertices"),
        (lambda: Polygon([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), "vertices"),
        (lambda: Polygon([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), "simple"),  # a bow tie
        (lambda: Polygon([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [1.0, 1.0]]), "simple"),  # folds back on itself
        (lambda: Polygon([[0, 0], [2, 0], [2, 2], [1, 0], [0, 2]]), "simple"),  # a vertex touching an edge
        (lambda: Polygon([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), "vertices"),
        (lambda: Disk([0.0, 0.0], 1.0) | Ball(3), "dimension"),
        (lambda: Disk([0.0, 0.0], 1.0) - Interval(0.0, 1.0), "dimension"),
        (lambda: Disk([0.0, 0.0], 1.0) & Ball([0.0, 0.0, 0.0], 1.0), "dimension"),
        (lambda: Disk([0.0, 0.0], 1.0) & Disk([5.0, 0.0], 1.0), "empty"),
        (lambda: (Disk([0.0, 0.0], 1.0) * Interval(0.0, 1.0)) | Disk([0.0, 0.0], 1.0), "spatial"),
        (lambda: Disk([0.0, 0.0], 1.0) * Interval(0.0, 1.0) * Interval(0.0, 1.0), "time"),
        (lambda: Disk([0.0, 0.0], 1.0) * Disk([0.0, 0.0], 1.0), "Interval"),
        (lambda: Disk([0.0, 0.0], 1.0).sample(-1), "n"),
        (lambda: shapes()["annulus"].sample(2.5), "n"),
        (lambda: shapes()["annulus"].sample_boundary(True), "n"),
        (lambda: shapes()["annulus"].sample(10, None, "halton"), "halton"),
        (lambda: Box([0.0], [1.0]).sample_boundary(10, None, "latin"), "latin"),
        (lambda: shapes()["annulus"].normal(torch.zeros(3, 3)), "points"),
        (lambda: Difference(Disk([0.0, 0.0], 1.0), "disk"), "geometry"),
    ],
)
def test_bad_arguments_are_clear_errors(factory, argument):
    with pytest.raises(ValueError, match=argument):
        factory()


def test_set_operations_nest_and_keep_a_float64_bounding_box():
    shape = (Disk([0.0, 0.0], 1.0) | Rectangle([0.0, -0.5], [3.0, 0.5])) - (Disk([2.0, 0.0], 0.2) | Disk([0.0, 0.0],
                                                                                                        0.3))
    assert isinstance(shape, Difference) and isinstance(shape.a, Union)
    assert shape.lower.dtype == torch.float64 and shape.lower.tolist() == [-1, -1] and shape.upper.tolist() == [3, 1]
    lens = Disk([0.0, 0.0], 1.0) & Disk([1.0, 0.0], 1.0)
    assert lens.lower.tolist() == [0, -1] and lens.upper.tolist() == [1, 1]
    points = shape.sample_boundary(3000, seeded(16))
    normals = shape.normal(points)
    assert bool(shape.contains(points - 1e-6 * normals).all())
    assert not bool(shape.contains(points + 1e-6 * normals).any())
    # a point on a subtracted disk's circle (inside the first one) has the normal pointing into that disk
    assert torch.allclose(shape.normal(torch.tensor([[2.2, 0.0]])), torch.tensor([[-1.0, 0.0]], dtype=torch.float64))
    assert Ball(2).lower.tolist() == [-1, -1] and Ball([1.0, 2.0], 0.5).upper.tolist() == [1.5, 2.5]
