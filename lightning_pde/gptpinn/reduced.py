"""The reduced residual of a GPT-PINN neuron bank and its Jacobian by the chain rule through the stored fields
(GPT-PINN, arXiv 2303.14878, Sec. 2.2: derivatives of u_n are linear in c; S2GPT-PINN, arXiv 2506.15687, Sec. 3: the
sparse loss at the magic points). The online solvers (:mod:`lightning_pde.gptpinn.solvers`) minimise |r(c)|^2."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lightning_pde.gptpinn.bank import ReducedFields, batched_conditions
from lightning_pde.gptpinn.solvers import jacobian as generic_jacobian
from lightning_pde.gptpinn.solvers import normal_from_jacobian

#: Jacobian entries per chunk when Gauss-Newton's J^T J is accumulated: 2^16 float64 = 512 KB, which stays in cache
NORMAL_CHUNK_ENTRIES = 2 ** 16


class GivenFields(ReducedFields):
    """Fields with given values (M, N) per key instead of ``c @ columns`` (for the chain-rule Jacobian)."""

    def __init__(self, values: dict[str, Tensor], x: Tensor, input_names: tuple[str, ...],
                 shifted: ReducedFields | None = None) -> None:
        super().__init__({}, x, input_names, None, shifted)
        self.values = values

    def __getitem__(self, key: str) -> Tensor:
        if key in self.input_names:
            return self.x[:, self.input_names.index(key)]
        if key not in self.values:
            raise KeyError(f"GPTPINN: the neuron bank has no field {key!r} (it stores {sorted(self.values)})")
        return self.values[key]


def reduced_fields(bank: Any, name: str, c: Tensor, rows: Tensor | None = None) -> ReducedFields:
    """The reduced fields of `bank` (a GPTPINN module) at its point set `name` (rows `rows` of it) for c (M, n)."""
    points = bank.point_sets[name] if rows is None else bank.point_sets[name][rows]
    shifted = None
    if f"{name}__shifted" in bank.point_sets:
        shifted = reduced_fields(bank, f"{name}__shifted", c, rows)
    return ReducedFields(bank.columns(name, rows), points, bank.problem.input_names, c, shifted)


def reduced_residual(bank: Any, params: Tensor, sparse: bool | None = None) -> Callable[[Tensor], Tensor]:
    """r(c): (M, n) -> (M, R) with |r|^2 the reduced physics loss for each parameter, read from the neuron bank of
    `bank` (a GPTPINN module: its problem, point sets, bank columns and S2GPT state), with ``r.jacobian(c)`` and
    ``r.normal_equations(c)`` by the chain rule through the stored fields (:func:`field_jacobian`).

    Full (GPT-PINN): sum over conditions of mean squared residual. Sparse (S2GPT-PINN, arXiv 2506.15687
    Sec. 3): the PDE residual at the magic points only, plus ``weight * (sum_i c_i - 1)^2`` in place of the
    parameter-independent initial/boundary terms (any affine combination of the neurons satisfies them).
    """
    conditions = batched_conditions(bank.problem, params)
    use_sparse = bank.sparse is not None and len(bank.magic_u) > 0 if sparse is None else sparse
    if use_sparse and (bank.sparse is None or not len(bank.magic_u)):
        raise ValueError("GPTPINN: sparse=True needs magic points (run with CollocationDownsampling)")
    rows = torch.cat([bank.magic_u, bank.magic_r]) if use_sparse else None
    keep = set(bank.sparse.get("keep_conditions", [])) if use_sparse else set(conditions)
    weight = float(bank.sparse.get("sum_to_one_weight", 1.0)) if use_sparse else 0.0
    if weight > 0 and not replaced_conditions_inhomogeneous(bank, keep):
        weight = 0.0  # e.g. Helmholtz's u = 0: every combination satisfies it, sum c is not constrained

    plan = [(cond, "pde", rows) if cond.kind == "pde" else (cond, name, None)
            for name, cond in conditions.items() if cond.kind == "pde" or name in keep]
    penalty = math.sqrt(weight) if use_sparse and weight > 0 else 0.0

    def assemble(fields_for, m: int, sizes: list | None = None) -> list[Tensor]:
        parts = []
        for j, (cond, set_name, set_rows) in enumerate(plan):
            r = cond.residual(fields_for(j, set_name, set_rows)).reshape(m, -1)
            parts.append(r / math.sqrt(r.shape[1]))
            if sizes is not None:
                sizes.append(r.shape[1])
        return parts

    def residual(c: Tensor) -> Tensor:
        parts = assemble(lambda j, set_name, set_rows: reduced_fields(bank, set_name, c, set_rows), len(c))
        if penalty:
            parts.append(penalty * (c.sum(-1, keepdim=True) - 1))
        return torch.cat(parts, dim=1)

    residual.jacobian = field_jacobian(bank, plan, assemble, residual, penalty, ("sparse", use_sparse))
    residual.normal_equations = residual.jacobian.normal_equations
    return residual


def field_jacobian(bank: Any, plan: list, assemble: Callable, residual: Callable[[Tensor], Tensor], penalty: float,
                   cache_key: tuple) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """(r, J) by the chain rule through the stored fields. Each residual is pointwise in the fields u, u_x, ...
    at its own point (and its periodic partner), so J[m, r, i] = sum_k dr/df_k[m, r] Psi_k[r, i], with the
    dr/df_k from one backward pass per residual component (instead of a forward-mode pass per neuron), and no
    (n x M x R) tangent fields. A residual that is not pointwise is detected on the first call (one random
    directional derivative) and falls back to the generic Jacobian. ``normal_equations(c)`` (Gauss-Newton) folds
    J into J^T J chunk by chunk instead of returning it."""
    names = bank.problem.input_names
    # the verdict depends on the problem and the loss variant only: checked once per module and variant
    verdicts = bank.__dict__.setdefault("_pointwise_verdicts", {})
    state = {"checked": cache_key in verdicts, "pointwise": verdicts.get(cache_key, True)}

    def columns(set_name: str, set_rows: Tensor | None) -> dict[str, Tensor]:
        return bank.columns(set_name, set_rows)

    def parts(c: Tensor) -> tuple[Tensor, list[tuple[int, int, list]]] | None:
        """(r without the penalty row, terms), or None where the residual turns out not to be pointwise. terms
        has per part of r (first row, rows, [(dr/df (M, rows), the field's bank columns (rows, n))] for the fields
        the part's residual depends on): J of the part is the sum of dr/df * columns over that list."""
        m = c.shape[0]
        cols = []  # per plan item: (main columns, shifted columns or None)
        for _, set_name, set_rows in plan:
            shifted = f"{set_name}__shifted"
            cols.append((columns(set_name, set_rows),
                         columns(shifted, set_rows) if shifted in bank.point_sets else None))
        entries = [(j, key, False) for j in range(len(plan)) for key in bank.keys]
        entries += [(j, key, True) for j in range(len(plan)) if cols[j][1] is not None for key in bank.keys]
        primals = tuple(c @ cols[j][1 if sh else 0][key].T for j, key, sh in entries)
        index = {e: i for i, e in enumerate(entries)}

        def fields_from(values):
            def fields_for(j, set_name, set_rows):
                points = bank.point_sets[set_name] if set_rows is None else bank.point_sets[set_name][set_rows]
                shifted = None
                if cols[j][1] is not None:
                    spoints = bank.point_sets[f"{set_name}__shifted"]
                    spoints = spoints if set_rows is None else spoints[set_rows]
                    shifted = GivenFields({k: values[index[(j, k, True)]] for k in bank.keys}, spoints, names)
                return GivenFields({k: values[index[(j, k, False)]] for k in bank.keys}, points, names, shifted)
            return fields_for

        sizes: list[int] = []

        def r_of(*values):
            sizes.clear()
            return torch.cat(assemble(fields_from(values), m, sizes), dim=1)

        # Each residual row belongs to one point of its part (component c of point p is row c N_j + p, the layout
        # of the pairs below; checked once against forward mode), so d r / d f_k at a point is the gradient of
        # the sum of one component's rows with respect to f_k: one backward pass per component (one for most
        # problems, two for a periodic pair u, u_x) gives every group's derivative, about 3x cheaper than a
        # forward-mode pass per group.
        leaves = tuple(p.detach().requires_grad_(True) for p in primals)
        points = [len(bank.point_sets[set_name]) if set_rows is None else len(set_rows)
                  for _, set_name, set_rows in plan]
        with torch.enable_grad():
            r = r_of(*leaves)
            if any(size % count for size, count in zip(sizes, points)):
                state["pointwise"] = verdicts[cache_key] = False
                return None
            components = [size // count for size, count in zip(sizes, points)]
            offsets = [sum(sizes[:j]) for j in range(len(sizes))]
            passes = []
            for comp in range(max(components)):
                select = torch.zeros_like(r)
                for j, k in enumerate(components):
                    if comp < k:
                        select[:, offsets[j] + comp * points[j]: offsets[j] + (comp + 1) * points[j]] = 1
                passes.append(torch.autograd.grad(r, leaves, select, allow_unused=True,
                                                  retain_graph=comp + 1 < max(components)))
        r = r.detach()
        terms = []
        for j in range(len(plan)):
            pairs = []  # only the fields this part uses (Allen-Cahn's PDE rows: 3 of 10 field groups)
            for entry, (part, g_key, g_shifted) in enumerate(entries):
                grads = [passes[comp][entry] for comp in range(components[j])] if part == j else [None]
                if all(grad is None for grad in grads):
                    continue
                deriv = torch.cat([r.new_zeros(m, points[j]) if grad is None else grad for grad in grads], dim=1)
                # several components per point (periodic: u and u_x) are stacked ahead of the points: row r
                # belongs to point r mod N (a different layout fails the check in jacobian() and falls back)
                pairs.append((deriv, cols[j][1 if g_shifted else 0][g_key].repeat(components[j], 1)))
            terms.append((offsets[j], sizes[j], pairs))
        return r, terms

    def rows_of_jacobian(pairs: list, start: int, stop: int, c: Tensor) -> Tensor:
        if not pairs:  # a residual that does not depend on the fields
            return c.new_zeros(c.shape[0], stop - start, c.shape[1])
        jac = pairs[0][0][:, start:stop, None] * pairs[0][1][start:stop]
        for deriv, block in pairs[1:]:  # a few fused multiply-adds (a batched matmul over rows is slower)
            jac.addcmul_(deriv[:, start:stop, None], block[start:stop])
        return jac

    def penalty_row(c: Tensor) -> Tensor:
        return penalty * (c.sum(-1, keepdim=True) - 1)

    def jacobian(c: Tensor) -> tuple[Tensor, Tensor]:
        got = parts(c) if state["pointwise"] else None
        if got is None:
            return generic_jacobian(residual, c, generic=True)
        r, terms = got
        m, n = c.shape
        jac = torch.cat([rows_of_jacobian(pairs, 0, rows, c) for _, rows, pairs in terms], dim=1)
        if penalty:
            r = torch.cat([r, penalty_row(c)], dim=1)
            jac = torch.cat([jac, penalty * c.new_ones(m, 1, n)], dim=1)
        if not state["checked"]:
            state["checked"] = True
            v = torch.randn(c.shape, dtype=c.dtype, generator=torch.Generator().manual_seed(0)).to(c.device)
            directional = torch.func.jvp(residual, (c,), (v,))[1]
            via = (jac @ v.unsqueeze(-1)).squeeze(-1)
            scale = directional.abs().max().clamp_min(1e-300)
            state["pointwise"] = verdicts[cache_key] = bool((directional - via).abs().max() <= 1e-8 * scale)
            if not state["pointwise"]:
                return generic_jacobian(residual, c, generic=True)
        return r, jac

    def normal_equations(c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(r, J^T J, J^T r) for Gauss-Newton. J is assembled NORMAL_CHUNK_ENTRIES entries at a time and folded into
        J^T J at once, so the (M, R, n) Jacobian never exists in full: each chunk stays in cache through its
        multiply-adds (100 Burgers parameters on a 64 x 64 grid: 0.57 s instead of 1.0 s with the full J)."""
        got = parts(c) if state["pointwise"] and state["checked"] else None
        if got is None:
            return normal_from_jacobian(*jacobian(c))
        r, terms = got
        m, n = c.shape
        jtj, jtr = c.new_zeros(m, n, n), c.new_zeros(m, n)
        chunk = max(16, NORMAL_CHUNK_ENTRIES // (m * n))
        for first, rows, pairs in terms:
            part_r = r[:, first:first + rows]
            for deriv, block in pairs:  # J^T r = sum_k (dr/df_k * r) @ Psi_k: one matrix product per field
                jtr.addmm_(deriv * part_r, block)
            for start in range(0, rows, chunk):
                jac = rows_of_jacobian(pairs, start, min(start + chunk, rows), c).transpose(1, 2)
                jtj.baddbmm_(jac, jac.transpose(1, 2))
        if penalty:  # the sum-to-one row penalty * (1, ..., 1)
            row = penalty_row(c)
            r = torch.cat([r, row], dim=1)
            jtj += penalty ** 2
            jtr += penalty * row
        return r, jtj, jtr

    jacobian.normal_equations = normal_equations
    return jacobian


def replaced_conditions_inhomogeneous(bank: Any, keep: set[str]) -> bool:
    """Whether a non-PDE condition that the sparse loss drops (not in `keep`) is inhomogeneous, i.e. its residual
    at u = 0 is nonzero on the bank's points. Only then does sum_i c_i = 1 follow from it (S2GPT's affine
    constraint, for parameter-independent data such as Burgers' u(x, 0) = -sin(pi x)). For homogeneous data
    (Helmholtz's u = 0 on the boundary) any linear combination of neurons satisfies the condition, the solution's
    sum of coefficients is not 1, and the penalty would bias the fit (the S2GPT Helmholtz code uses the
    residual alone)."""
    zero = bank.selected.new_zeros(1, max(bank.n_neurons, 1))
    for name, cond in bank.conditions.items():
        if cond.kind == "pde" or name in keep or name not in bank.point_sets:
            continue
        columns = {key: zero.new_zeros(len(bank.point_sets[name]), zero.shape[1])
                   for key in bank.keys}
        shifted = None
        if f"{name}__shifted" in bank.point_sets:
            shifted = ReducedFields(columns, bank.point_sets[f"{name}__shifted"], bank.problem.input_names, zero)
        fields = ReducedFields(columns, bank.point_sets[name], bank.problem.input_names, zero, shifted)
        if torch.as_tensor(cond.residual(fields)).abs().max() > 1e-12:
            return True
    return False
