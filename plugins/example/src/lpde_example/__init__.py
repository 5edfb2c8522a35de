"""An example lightning-pde plugin, registered only through entry points (see its pyproject.toml).

It adds a problem (`Advection`), a network (`ModifiedMLP`) and a callback (`StepTimer`); CONTRIBUTING.md (e) walks
through writing it.
"""

#: the lightning-pde plugin API this package was written for (checked by lightning_pde.registry)
LPDE_PLUGIN_API = 1
