"""Training one phase of the two-phase λβ-VAE protocol (paper §5.2), for one run or a pack of
runs trained in one process, resumable and reproducible.

A phase is ``stabilize`` (a β-VAE trained from a seeded initialisation) or ``finetune`` (the
λβ-VAE objective, starting from a stabilized model's weights with a fresh Adam). The images live
on the training device as uint8 (``lambdabeta.loader.DeviceImages``), so a step involves no
host↔device transfer and no per-image Python.

Modules, one concern each:

- ``pack``        the entry points ``train`` and ``train_pack``, and the checks of their inputs
- ``member``      one run: its files, its state between sessions, its summary when it ends
- ``session``     the members at one step trained together; failures of single members
- ``step``        one optimisation step and the device options (bf16, TF32, compile, graphs)
- ``gradients``   the pack's forward and backward pass (loss from ``lambdabeta.loss``)
- ``layouts``     how a pack holds its weights and Adam state (``loop`` and ``vmap`` modes)
- ``checkpoint``  the checkpoint contract: what is written, when a checkpoint may be resumed
- ``curve``       the training curve, its files and the rows in progress on the device
- ``streams``     the seeded initialisation, batch-index and noise streams
"""

from .checkpoint import CheckpointMismatchError
from .member import PackMember
from .pack import NonFiniteLossError, train, train_pack

__all__ = ["CheckpointMismatchError", "NonFiniteLossError", "PackMember", "train", "train_pack"]
