"""Logistic and softmax regression trained by plain NumPy gradient descent, using xent's return_grad.

Run: python examples/logistic_regression_numpy.py

No autograd framework: ``xent.binary_cross_entropy(..., from_logits=True,
return_grad=True)`` returns the mean loss and its gradient with respect to the
logits, ``(sigmoid(z) - y) / N``; the chain rule through ``z = X w + b`` is one
matrix product. The same holds for softmax regression with
``xent.sparse_categorical_cross_entropy``, whose logit gradient is
``(softmax(z) - onehot(y)) / N``.

Minimising the mean cross-entropy is maximum likelihood, so the fit equals an
unpenalised logistic regression (``sklearn.linear_model.LogisticRegression``
without penalty), and a model with only an intercept predicts mean(y).
"""

from __future__ import annotations

import numpy as np

import xent


def make_data(n: int = 300, d: int = 3, k: int = 2, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal features and labels drawn from a softmax model (k classes; k=2 is binary)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(scale=0.8, size=(d, k))
    b = rng.normal(scale=0.3, size=k)
    probs = xent.softmax(X @ W + b)
    y = np.array([rng.choice(k, p=row) for row in probs])
    return X, y


def _step_size(X: np.ndarray, curvature: float) -> float:
    """1 / L: L bounds the Hessian, curvature * lambda_max([X 1]^T [X 1] / N)."""
    Xa = np.hstack([X, np.ones((X.shape[0], 1))])
    return 1.0 / (curvature * np.linalg.eigvalsh(Xa.T @ Xa / X.shape[0])[-1])


def fit_logistic(X: np.ndarray, y: np.ndarray, *, tol: float = 1e-10, max_iter: int = 20000):
    """Binary logistic regression: minimise mean BCE(y, sigmoid(X w + b)). Returns (w, b, losses)."""
    w, b = np.zeros(X.shape[1]), 0.0
    lr = _step_size(X, 0.25)  # sigmoid'(z) <= 1/4
    losses = []
    for _ in range(max_iter):
        loss, g = xent.binary_cross_entropy(y, X @ w + b, from_logits=True, return_grad=True)
        losses.append(float(loss))
        gw, gb = X.T @ g, g.sum()  # chain rule through z = X w + b
        if max(np.abs(gw).max(), abs(gb)) < tol:
            break
        w, b = w - lr * gw, b - lr * gb
    return w, b, losses


def fit_softmax(X: np.ndarray, y: np.ndarray, k: int, *, tol: float = 1e-10, max_iter: int = 20000):
    """Softmax regression: minimise mean sparse CE(y, softmax(X W + b)). Returns (W, b, losses)."""
    W, b = np.zeros((X.shape[1], k)), np.zeros(k)
    lr = _step_size(X, 0.5)  # the softmax Hessian diag(p) - p p^T has eigenvalues <= 1/2
    losses = []
    for _ in range(max_iter):
        loss, G = xent.sparse_categorical_cross_entropy(y, X @ W + b, from_logits=True, return_grad=True)
        losses.append(float(loss))
        gW, gb = X.T @ G, G.sum(axis=0)
        if max(np.abs(gW).max(), np.abs(gb).max()) < tol:
            break
        W, b = W - lr * gW, b - lr * gb
    return W, b, losses


def fit_intercept_only(y: np.ndarray, *, tol: float = 1e-12, max_iter: int = 10000) -> float:
    """A model with one parameter b for every example: the optimum has sigmoid(b) = mean(y)."""
    b = 0.0
    for _ in range(max_iter):
        _, g = xent.binary_cross_entropy(y, np.full(y.shape, b), from_logits=True, return_grad=True)
        if abs(g.sum()) < tol:
            break
        b -= 4.0 * g.sum()  # 1 / L with L = 1/4
    return b


def main(n: int = 300, d: int = 3, k: int = 3, *, seed: int = 0) -> dict[str, object]:
    X, y2 = make_data(n, d, 2, seed=seed)
    w, b, losses = fit_logistic(X, y2.astype(float))
    assert losses[-1] < losses[0], "the loss must fall"
    print(f"logistic regression: {len(losses)} gradient steps, mean BCE {losses[0]:.4f} -> {losses[-1]:.6f} nats")
    print("  w =", np.array2string(w, precision=6), " b =", f"{b:.6f}")

    Xk, yk = make_data(n, d, k, seed=seed + 1)
    W, bk, losses_k = fit_softmax(Xk, yk, k)
    assert losses_k[-1] < losses_k[0]
    print(f"softmax regression ({k} classes): {len(losses_k)} steps, mean CE {losses_k[0]:.4f} -> {losses_k[-1]:.6f}")
    print("  W =", np.array2string(W, precision=5).replace("\n", "\n      "))

    b0 = fit_intercept_only(y2.astype(float))
    p0 = float(xent.sigmoid(b0))
    assert abs(p0 - y2.mean()) < 1e-9, (p0, y2.mean())
    print(f"intercept only: sigmoid(b) = {p0:.9f} = mean(y) = {y2.mean():.9f} (the maximum-likelihood estimate)")
    return {"X": X, "y": y2, "w": w, "b": b, "losses": losses,
            "Xk": Xk, "yk": yk, "W": W, "bk": bk, "losses_k": losses_k, "intercept_only": p0}


if __name__ == "__main__":
    main()
