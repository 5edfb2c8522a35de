"""Derivative engines. Each implements :class:`DerivativeEngine` and is registered under the
``lightning_pde.derivatives`` entry-point group."""

from lightning_pde.derivatives.autograd import Autograd, AutogradFields
from lightning_pde.derivatives.base import DerivativeEngine, Fields, parse_derivative
from lightning_pde.derivatives.forward import Forward, ForwardFields
from lightning_pde.derivatives.forward_laplacian import ForwardLaplacian, ForwardLaplacianFields
from lightning_pde.derivatives.single_pass import SinglePass, SinglePassFields
from lightning_pde.derivatives.stein import Stein, SteinFields

__all__ = ["Autograd", "AutogradFields", "DerivativeEngine", "Fields", "Forward", "ForwardFields", "ForwardLaplacian",
           "ForwardLaplacianFields", "SinglePass", "SinglePassFields", "Stein", "SteinFields",
           "parse_derivative"]
