"""lightning-pde-smx: the `SMXPrecision` Lightning precision plugin (square-block MX training, arXiv 2512.09202).

Select it with ``--trainer.plugins=SMXPrecision`` (or ``trainer.plugins: [SMXPrecision]`` in a config)."""

from lpde_smx.precision import SMXPrecision

#: the lightning-pde plugin API this package was written for (checked by lightning_pde.registry)
LPDE_PLUGIN_API = 1

__all__ = ["SMXPrecision"]
