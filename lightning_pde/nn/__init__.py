"""Networks and layers, registered under the ``lightning_pde.nets`` entry-point group."""

from lightning_pde.nn.embeddings import Embedding, FourierFeatures, PeriodicEmbedding
from lightning_pde.nn.mlp import MLP
from lightning_pde.nn.tt_linear import TTLinear, TTMLP

__all__ = ["MLP", "TTLinear", "TTMLP", "Embedding", "FourierFeatures", "PeriodicEmbedding"]
