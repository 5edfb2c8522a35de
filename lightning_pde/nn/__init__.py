"""Networks and layers, registered under the ``lightning_pde.nets`` entry-point group."""

from lightning_pde.nn.embeddings import Embedding, FourierFeatures, PeriodicEmbedding
from lightning_pde.nn.mlp import MLP

__all__ = ["MLP", "Embedding", "FourierFeatures", "PeriodicEmbedding"]
