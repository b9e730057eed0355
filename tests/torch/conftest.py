"""tests/torch: the PyTorch face. Shared helpers live in xtorch_helpers.py."""
