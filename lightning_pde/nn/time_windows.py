"""A network that is piecewise in time: one sub-network per time window, for time-marching training."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_pde.nn.mlp import MLP
from lightning_pde.spec import Configurable
from lightning_pde.validation import nonempty_str, positive_int


class TimeWindows(nn.Module, Configurable):
    """`n_windows` copies of a network, copy k defined on the k-th of `n_windows` equal slabs of the time input
    (the sequence-to-sequence / time-marching PINN of Krishnapriyan et al. 2021, arXiv 2109.01050, Sec. 4.2, and
    Wight & Zhao 2020, arXiv 2007.04542). Each copy sees its slab's time mapped onto [-1, 1], so it has the full
    input range to resolve its piece. The :class:`~lightning_pde.callbacks.time_marching.TimeMarching` callback
    trains the windows one after another.

    Routing: a point with time in [e_k, e_{k+1}) goes to window k (the last window also takes t = e_K), so a
    window boundary belongs to the later window, whose initial condition is the earlier window's end state.
    While ``active_window`` is set (during time-marching training), every point goes to that window.

    The slab edges ``edges`` (a buffer, saved in checkpoints) are in the network's own coordinates; they default to
    [-1, 1] split evenly, which is the time range a :class:`~lightning_pde.modules.PINN` with
    ``normalize_inputs=True`` feeds its network.

    Args:
        net: the network of one window, built by this one (e.g. an ``MLP`` without sizes, with a
            ``PeriodicEmbedding``); default ``MLP()``. Every window starts from an independent copy.
        n_windows: number of time windows.
        time_input: name of the time input.

    Shapes: (N, in_features) -> (N, out_features).
    """

    def __init__(self, net: nn.Module | None = None, n_windows: int = 10, time_input: str = "t") -> None:
        super().__init__()
        net = net if net is not None else MLP()
        if not isinstance(net, nn.Module):
            raise ValueError(f"TimeWindows: net must be a network (an nn.Module such as MLP), got {net!r}")
        self.n_windows = positive_int("TimeWindows", "n_windows", n_windows)
        self.time_input = nonempty_str("TimeWindows", "time_input", time_input)
        self._template = [net]  # a list, so the unbuilt template is no submodule (no parameters, no state)
        self.windows = nn.ModuleList()
        self.register_buffer("edges", torch.linspace(-1.0, 1.0, self.n_windows + 1, dtype=torch.float64))
        #: the window every point is sent to while set (time-marching training); None routes by time
        self.active_window: int | None = None
        self.time_index: int | None = None
        self.in_features: int | None = None
        self.out_features: int | None = None

    def build(self, in_features: int, out_features: int, input_names: Sequence[str] | None = None,
              periods: dict[str, float] | None = None) -> "TimeWindows":
        """Build one copy of the template per window (see :meth:`lightning_pde.nn.MLP.build`)."""
        names = list(input_names) if input_names is not None else [f"x{i}" for i in range(in_features)]
        if self.time_input not in names:
            raise ValueError(f"TimeWindows: no input named {self.time_input!r}; inputs are {tuple(names)}")
        if self.windows:
            if (self.in_features, self.out_features) != (in_features, out_features):
                raise ValueError(f"TimeWindows: built for {self.in_features} inputs and {self.out_features} "
                                 f"outputs, not {in_features} and {out_features}")
            return self
        self.time_index = names.index(self.time_input)
        for _ in range(self.n_windows):
            window = copy.deepcopy(self._template[0])
            if callable(getattr(window, "build", None)):
                window.build(in_features, out_features, names, periods)
            self.windows.append(window)
        self.in_features, self.out_features = in_features, out_features
        return self

    def set_edges(self, edges: Tensor) -> None:
        """Set the slab edges, (n_windows + 1,) increasing, in the network's coordinates."""
        edges = torch.as_tensor(edges, dtype=torch.float64).flatten()
        if len(edges) != self.n_windows + 1 or not bool((edges[1:] > edges[:-1]).all()):
            raise ValueError(f"TimeWindows: edges must be {self.n_windows + 1} increasing values, got {edges.tolist()}")
        self.edges.copy_(edges.to(self.edges))

    def window_of(self, t: Tensor) -> Tensor:
        """Window index of each time `t` (N,) in network coordinates, (N,) long."""
        inner = self.edges[1:-1].to(t.dtype).contiguous()
        return torch.bucketize(t.detach().contiguous(), inner, right=True)

    def _local(self, k: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        """Scale and shift (in_features,) that map window k's time slab onto [-1, 1] and leave the rest alone."""
        lower, upper = float(self.edges[k]), float(self.edges[k + 1])
        scale = torch.ones(self.in_features, dtype=dtype, device=device)
        shift = torch.zeros(self.in_features, dtype=dtype, device=device)
        scale[self.time_index] = 2 / (upper - lower)
        shift[self.time_index] = -(upper + lower) / (upper - lower)
        return scale, shift

    def forward_window(self, x: Tensor, k: int) -> Tensor:
        """Window k's network at x (N, in_features), whatever the times."""
        scale, shift = self._local(k, x.dtype, x.device)
        return self.windows[k](x * scale + shift)

    def _routes(self, x: Tensor) -> list[tuple[int, Tensor | None]]:
        """(window, rows) pairs covering x; rows None means all of them."""
        if self.active_window is not None:
            return [(self.active_window, None)]
        window = self.window_of(x[:, self.time_index])
        present = torch.unique(window).tolist()
        if len(present) == 1:
            return [(present[0], None)]
        return [(k, torch.nonzero(window == k).flatten()) for k in present]

    def forward(self, x: Tensor) -> Tensor:
        if not self.windows:
            raise RuntimeError("TimeWindows: call build(in_features, out_features, input_names) before using it")
        routes = self._routes(x)
        if routes[0][1] is None:
            return self.forward_window(x, routes[0][0])
        out = x.new_zeros(len(x), self.out_features)
        for k, rows in routes:
            out = out.index_put((rows,), self.forward_window(x[rows], k))
        return out

    def forward_laplacian(self, x: Tensor, jacobian: Tensor | None = None, laplacian: Tensor | None = None,
                          laplacian_inputs: Sequence[int] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The windows' forward Laplacians (:meth:`lightning_pde.nn.MLP.forward_laplacian`), each after the
        affine map of its slab's time onto [-1, 1]: that map scales the Jacobian's and Laplacian's time columns
        and adds no curvature."""
        if jacobian is None:
            jacobian = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)[None]
        if laplacian is None:
            laplacian = x.new_zeros(1, x.shape[1])

        if not all(callable(getattr(window, "forward_laplacian", None)) for window in self.windows):
            raise ValueError(f"TimeWindows: the window network ({type(self.windows[0]).__name__}) has no "
                             "forward_laplacian; use the Autograd engine")

        def window_laplacian(k: int, rows: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
            pick = (lambda a: a) if rows is None else (lambda a: a if a.shape[0] == 1 else a[rows])
            scale, shift = self._local(k, x.dtype, x.device)
            return self.windows[k].forward_laplacian(pick(x) * scale + shift, pick(jacobian) * scale,
                                                     pick(laplacian) * scale, laplacian_inputs)

        routes = self._routes(x)
        if routes[0][1] is None:
            return window_laplacian(*routes[0])
        parts = [(rows, window_laplacian(k, rows)) for k, rows in routes]
        results = []
        for i in range(3):
            full = parts[0][1][i].new_zeros((len(x), *parts[0][1][i].shape[1:]))
            for rows, result in parts:
                full = full.index_put((rows,), result[i])
            results.append(full)
        return tuple(results)
