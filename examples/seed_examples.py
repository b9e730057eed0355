"""Every worked example of the seed articles, reproduced with xent's public API.

Run: python examples/seed_examples.py

Each number is computed by xent and checked against the value the articles
give (to the digits they give). ``main()`` returns the computed values.
"""

from __future__ import annotations

import math

import numpy as np

import xent


def containers_entropy_bits() -> list[float]:
    """Three containers of 30 shapes: (26, 4), (14, 16), (29, 1). Entropy in bits."""
    counts = [(26, 4), (14, 16), (29, 1)]
    return [float(xent.entropy(np.array(c) / 30, base=2)) for c in counts]


def four_class_cross_entropy() -> tuple[float, float]:
    """Prediction [0.775, 0.116, 0.039, 0.070], truth is class 0: (bits, nats)."""
    p = np.array([0.775, 0.116, 0.039, 0.070])
    one_hot = np.array([1.0, 0.0, 0.0, 0.0])
    bits = float(xent.categorical_cross_entropy(one_hot, p, base=2))
    nats = float(xent.sparse_categorical_cross_entropy(np.array([0]), p[None, :]))
    # the same number three ways: one-hot target, class index, and H(p, q) of distributions
    assert math.isclose(bits, float(xent.cross_entropy(one_hot, p, base=2)), rel_tol=1e-15)
    assert math.isclose(nats, float(xent.categorical_cross_entropy(one_hot, p)), rel_tol=1e-15)
    return bits, nats


def point_error() -> float:
    """A point whose true colour gets probability 0.2 has error -ln 0.2."""
    return float(xent.binary_cross_entropy(np.array([1.0]), np.array([0.2])))


def three_doors() -> float:
    """p(gift) = 0.8, 0.7, 0.1; gifts behind doors 1 and 2. Summed cross-entropy in nats."""
    y = np.array([1.0, 1.0, 0.0])
    p = np.array([0.8, 0.7, 0.1])
    return float(xent.binary_cross_entropy(y, p, reduction="sum"))


def intercept_only_mle(y: np.ndarray, *, steps: int = 200, lr: float = 4.0) -> float:
    """Fit p = sigmoid(b) by gradient descent on mean BCE; the optimum is p = mean(y)."""
    b = np.zeros(1)
    for _ in range(steps):
        # return_grad gives d(mean BCE)/d(logit) per example; the shared b collects their sum
        _, g = xent.binary_cross_entropy(y, np.full(y.shape, b[0]), from_logits=True, return_grad=True)
        b -= lr * g.sum()
    return float(xent.sigmoid(b[0]))


def softmax_equals_sigmoid(z1: float, z2: float) -> tuple[float, float]:
    """Softmax CE of logits [z1, z2] with label 0 vs BCE of sigmoid(z1 - z2) with label 1."""
    softmax_ce = float(xent.sparse_categorical_cross_entropy(np.array([0]), np.array([[z1, z2]]), from_logits=True))
    bce = float(xent.binary_cross_entropy(np.array([1.0]), np.array([z1 - z2]), from_logits=True))
    return softmax_ce, bce


def main() -> dict[str, object]:
    out: dict[str, object] = {}
    h = containers_entropy_bits()
    for got, want in zip(h, (0.56651, 0.99679, 0.21084)):
        assert abs(got - want) < 5e-6, (got, want)
    out["containers_bits"] = h
    print("entropy of the containers (bits):", ", ".join(f"{v:.5f}" for v in h))

    bits, nats = four_class_cross_entropy()
    assert abs(bits - 0.36773) < 5e-6 and abs(nats - 0.25489) < 5e-6
    assert math.isclose(bits, nats / math.log(2), rel_tol=1e-14)
    out["four_class"] = (bits, nats)
    print(f"4-class cross-entropy: {bits:.5f} bits = {nats:.5f} nats")

    e = point_error()
    assert abs(e - 1.60944) < 5e-6 and math.isclose(e, -math.log(0.2), rel_tol=1e-15)
    out["point_error"] = e
    print(f"error of a point with p = 0.2: {e:.5f}")

    d = three_doors()
    assert abs(d - 0.68518) < 5e-6
    out["three_doors"] = d
    print(f"three doors, summed cross-entropy: {d:.5f} nats")

    y = np.array([1, 0, 0, 1, 1, 1, 0, 1, 0, 1], dtype=float)
    mu = intercept_only_mle(y)
    assert abs(mu - y.mean()) < 1e-9, (mu, y.mean())
    out["intercept_only"] = (mu, float(y.mean()))
    print(f"intercept-only model: sigmoid(b) = {mu:.6f}, mean(y) = {y.mean():.6f}")

    a, b = softmax_equals_sigmoid(1.3, -0.4)
    assert math.isclose(a, b, rel_tol=1e-14)
    out["softmax_vs_sigmoid"] = (a, b)
    print(f"softmax CE of [1.3, -0.4], label 0 = {a:.6f} = BCE of sigmoid(1.7), label 1 = {b:.6f}")
    return out


if __name__ == "__main__":
    main()
