"""xent: cross-entropy done right.

The whole cross-entropy family, exact and numerically stable, on NumPy,
PyTorch and JAX arrays. See the README for the conventions table.
"""

from xent.information import cross_entropy, entropy, js_divergence, kl_divergence
from xent.primitives import log_sigmoid, log_softmax, logsumexp, sigmoid, softmax

__version__ = "0.1.0"

__all__ = [
    "cross_entropy",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "softmax",
]
