"""A small PyTorch classifier trained with xent's loss on torch tensors.

Run: python examples/torch_training.py

``xent.sparse_categorical_cross_entropy`` takes the torch logits directly and
returns a torch scalar; ``loss.backward()`` differentiates through it with
torch's autograd, so xent drops into an ordinary training loop. The script
prints the loss falling and checks that the gradient torch computes equals the
one xent returns with ``return_grad=True``.
"""

from __future__ import annotations

import math

import numpy as np

import xent


def make_blobs(n: int, k: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k Gaussian blobs in 2-d, centred on a circle of radius 3."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    angles = 2 * math.pi * np.arange(k) / k
    centres = 3.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return (centres[y] + rng.normal(size=(n, 2))).astype(np.float32), y


def main(n: int = 600, k: int = 4, steps: int = 120, *, seed: int = 0) -> dict[str, object]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small only pays thread overhead
    try:
        return _train(torch, n, k, steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train(torch, n: int, k: int, steps: int, seed: int) -> dict[str, object]:
    torch.manual_seed(seed)
    X_np, y_np = make_blobs(n, k, seed=seed)
    X, y = torch.from_numpy(X_np), torch.from_numpy(y_np)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, k))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        logits = model(X)
        loss = xent.sparse_categorical_cross_entropy(y, logits, from_logits=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % max(1, steps // 5) == 0 or step == steps - 1:
            print(f"step {step:4d}  mean cross-entropy {loss.item():.4f} nats")

    with torch.no_grad():
        logits = model(X)
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    # autograd through xent agrees with xent's analytic gradient
    z = logits.detach().requires_grad_(True)
    xent.sparse_categorical_cross_entropy(y, z, from_logits=True).backward()
    _, analytic = xent.sparse_categorical_cross_entropy(y, z.detach(), from_logits=True, return_grad=True)
    grad_gap = (z.grad - analytic).abs().max().item()

    assert losses[-1] < 0.5 * losses[0], "the loss should at least halve"
    assert grad_gap < 1e-6, grad_gap
    print(f"accuracy {accuracy:.3f}; loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
          f"|autograd - return_grad| = {grad_gap:.1e}")
    return {"losses": losses, "accuracy": accuracy, "grad_gap": grad_gap}


if __name__ == "__main__":
    main()
