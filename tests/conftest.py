"""Shared test settings."""

import torch

# The tests use tiny tensors, for which one thread is fastest and timing is steady on a loaded
# machine; tests that measure threading set their own.
torch.set_num_threads(1)
