"""Types for annotating code that calls xent.

>>> import numpy as np
>>> import xent
>>> from xent.typing import Array, Reduction
>>> def weighted_log_loss(y: Array, p: Array, reduction: Reduction = "mean") -> Array:
...     return xent.binary_cross_entropy(y, p, reduction=reduction)
>>> round(float(weighted_log_loss(np.array([1, 0]), np.array([0.9, 0.2]))), 6)
0.164252
"""

from xent._lib.typing import Array, ArrayLike, Eps, Reduction

__all__ = ["Array", "ArrayLike", "Eps", "Reduction"]
