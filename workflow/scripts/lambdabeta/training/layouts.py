"""How a pack of K models of one architecture holds its weights and its one Adam's state.

A pack trains K runs as one model whose loss is the **sum** of theirs (``lambdabeta.training.
gradients``), so member k's weights receive exactly the gradient of member k's own loss; and
Adam, which is elementwise, run once over all the members' weights, is the same arithmetic as K
independent Adams (same lr, betas and eps; no reduction across members, no gradient clipping).

Two layouts (``PACK_MODES``):

* ``loop`` (``MemberWeights``): each member keeps its own tensors, laid out as its solo run's,
  and one fused Adam steps all K·P tensors. Every member's arithmetic is then its solo run's,
  bit for bit on CPU, and a pack of one *is* the solo run. The way for CPUs, where grouped
  convolutions are slower than the members' own one after another (a pack saves little there).
* ``vmap`` (``StackedWeights``): each weight of the K members is one leaf tensor ``K × …``
  whose slice k is member k's weight, laid out as its solo tensor, and the fused Adam steps P
  stacked tensors: a step launches as many kernels for K members as for one, the way to keep a
  GPU busy with a small model. Sums run in another order (and the CPU's fused Adam vectorises a
  stacked tensor differently from K small ones), so members agree with their solo runs to
  float32 rounding, not bit for bit.

Both exchange each member's state in the solo run's format: its weights by name and its Adam's
``state_dict`` (``member_weights``, ``member_adam_state``; built from members with
``adam_state``), so a run moves between solo training and packs of any size or mode.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch

PACK_MODES = ("loop", "vmap")
"""How a pack holds its weights and runs its forward passes (see the module docstring)."""


def default_mode(device: torch.device) -> str:
    """``vmap`` on CUDA (one kernel per layer for the whole pack), ``loop`` elsewhere: on CPU
    the members' own convolutions one after another beat one grouped convolution."""
    return "vmap" if device.type == "cuda" else "loop"


# ---- stacking helpers -----------------------------------------------------------------------


def stacked_empty(like: torch.Tensor, count: int) -> torch.Tensor:
    """An uninitialised ``count × like.shape`` tensor whose slices have ``like``'s strides.

    The dimensions of ``like`` are ordered from the largest stride to the smallest (its memory
    order), a contiguous tensor of that order with the new dimension first is allocated, and its
    dimensions are permuted back: slice ``k`` then has ``like``'s memory layout.
    """
    order = sorted(range(like.ndim), key=lambda dim: -like.stride(dim))
    storage = like.new_empty((count, *(like.shape[dim] for dim in order)))
    back = [0, *(1 + order.index(dim) for dim in range(like.ndim))]
    return storage.permute(back)


def stack_like(tensors: Sequence[torch.Tensor], like: torch.Tensor | None = None) -> torch.Tensor:
    """``tensors`` (one shape) stacked along a new first dimension, each slice laid out like
    ``like`` (default: the first tensor), on ``like``'s device and dtype."""
    like = tensors[0] if like is None else like
    stacked = stacked_empty(like, len(tensors))
    with torch.no_grad():
        for slot, tensor in zip(stacked, tensors, strict=True):
            slot.copy_(tensor)
    return stacked


def _check_names(members: Sequence[Mapping[str, torch.Tensor]]) -> list[str]:
    names = list(members[0])
    for k, weights in enumerate(members):
        if list(weights) != names:
            raise ValueError(f"pack member {k} has weights {list(weights)}, member 0 {names}")
    return names


def _same_step(slots: Sequence[Mapping[str, Any]]) -> None:
    steps = {float(slot["step"]) for slot in slots}
    if len(steps) != 1:
        raise ValueError(f"pack members are at different Adam steps {sorted(steps)}")


def _solo_groups(state_dict: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    """The solo run's Adam param groups (one group of its ``count`` tensors)."""
    (group,) = copy.deepcopy(state_dict["param_groups"])
    return [group | {"params": list(range(count))}]


# ---- the two layouts ---------------------------------------------------------------------------


class MemberWeights:
    """``loop`` mode: each member's own leaf tensors; the optimizer steps all of them.

    The optimizer's tensors are member after member (``P`` per member, in name order), so
    member k's Adam state is entries ``k·P … k·P + P − 1`` of the pack's.
    """

    mode = "loop"

    def __init__(self, members: Sequence[Mapping[str, torch.Tensor]]):
        self.names = _check_names(members)
        # clone keeps each tensor's layout (strides), so a member's arithmetic is its solo run's
        self.members = [
            {name: weights[name].detach().clone().requires_grad_() for name in self.names}
            for weights in members
        ]

    def __len__(self) -> int:
        return len(self.members)

    def parameters(self) -> list[torch.Tensor]:
        """The tensors the optimizer steps."""
        return [tensor for weights in self.members for tensor in weights.values()]

    def member_weights(self, k: int) -> dict[str, torch.Tensor]:
        """Copies of member ``k``'s weights, by name."""
        return {name: tensor.detach().clone() for name, tensor in self.members[k].items()}

    def adam_state(self, members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The pack's Adam ``state_dict`` from its members' (solo-format) ones."""
        count = len(self.names)
        state = {}
        for k, member in enumerate(members):
            for index in range(count):
                state[k * count + index] = dict(member["state"][index])
        _same_step(list(state.values()))
        return {"state": state, "param_groups": _solo_groups(members[0], count * len(members))}

    def member_adam_state(self, state_dict: Mapping[str, Any], k: int) -> dict[str, Any]:
        """Member ``k``'s part of the pack's Adam ``state_dict``, as its solo run's Adam has it."""
        count = len(self.names)
        own = [state_dict["state"][k * count + index] for index in range(count)]
        state = {
            index: {key: value.clone() for key, value in slot.items()}
            for index, slot in enumerate(own)
        }
        return {"state": state, "param_groups": _solo_groups(state_dict, count)}

    def finite_members(self) -> list[bool]:
        """For each member, whether all its weights are finite."""
        flags = [
            torch.stack([torch.isfinite(tensor.detach()).all() for tensor in weights.values()])
            for weights in self.members
        ]
        return torch.stack(flags).all(dim=1).tolist()


class StackedWeights:
    """``vmap`` mode: one leaf tensor ``K × …`` per weight; slice k is member k's weight, laid
    out as its solo tensor. The optimizer steps the stacked tensors."""

    mode = "vmap"

    def __init__(self, members: Sequence[Mapping[str, torch.Tensor]]):
        self.names = _check_names(members)
        self.stacked = {
            name: stack_like([weights[name] for weights in members]).requires_grad_()
            for name in self.names
        }

    def __len__(self) -> int:
        return next(iter(self.stacked.values())).shape[0]

    def parameters(self) -> list[torch.Tensor]:
        """The tensors the optimizer steps."""
        return list(self.stacked.values())

    def member_weights(self, k: int) -> dict[str, torch.Tensor]:
        """Copies (same layout) of slice ``k`` of each stacked weight, by name."""
        return {name: tensor[k].detach().clone() for name, tensor in self.stacked.items()}

    def adam_state(self, members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The pack's Adam ``state_dict`` from its members' (solo-format) ones: each moment
        stacked like its weight; the step count, which the members share, is the first's."""
        state = {}
        for index, param in enumerate(self.stacked.values()):
            slots = [member["state"][index] for member in members]
            _same_step(slots)
            state[index] = {
                key: (
                    value.clone()
                    if key == "step"
                    else stack_like([slot[key] for slot in slots], like=param.detach()[0])
                )
                for key, value in slots[0].items()
            }
        return {"state": state, "param_groups": _solo_groups(members[0], len(self.stacked))}

    def member_adam_state(self, state_dict: Mapping[str, Any], k: int) -> dict[str, Any]:
        """Member ``k``'s part of the pack's Adam ``state_dict``: slice ``k`` of each moment and
        the shared step count, as its solo run's Adam has them."""
        state = {
            index: {
                key: value.clone() if key == "step" else value[k].clone()
                for key, value in slot.items()
            }
            for index, slot in state_dict["state"].items()
        }
        return {"state": state, "param_groups": _solo_groups(state_dict, len(self.stacked))}

    def finite_members(self) -> list[bool]:
        """For each member, whether all its weights are finite."""
        finite = [
            torch.isfinite(weight.detach()).flatten(1).all(dim=1)
            for weight in self.stacked.values()
        ]
        return torch.stack(finite).all(dim=0).tolist()


PackWeights = MemberWeights | StackedWeights


def effective_mode(mode: str, count: int) -> str:
    """The mode a pack of ``count`` runs asked to train in ``mode`` uses: a pack of one is the
    solo run (``loop``), whatever the mode."""
    if mode not in PACK_MODES:
        raise ValueError(f"pack mode must be one of {PACK_MODES}, got {mode!r}")
    return "loop" if count == 1 else mode


def pack_weights(members: Sequence[Mapping[str, torch.Tensor]], mode: str) -> PackWeights:
    """The members' weights (one name → tensor mapping each) held for training in ``mode``."""
    if effective_mode(mode, len(members)) == "loop":
        return MemberWeights(members)
    return StackedWeights(members)
