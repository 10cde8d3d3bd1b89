"""AdamW on (A, B, raw factors of Σ_Z and Σ_W) of every restart and grid point at once.

Adam is elementwise, so one update of the stacked parameters is exactly one update of each
entry. Gradients are closed forms (``parameterization``), never an autograd graph, and the update
is PyTorch's fused AdamW kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.optim.adamw import adamw as adamw_functional

from .instance import DTYPE, Instance, Operators
from .jobs import GradClip
from .objective import Params, frob2
from .parameterization import LogCholesky, Parameterization
from .settings import REPORTS

# On the CPU a step takes this many entries at a time through gradients, clipping, update and
# projection, so that their n × n matrices and temporaries stay in the cache between passes.
GRADIENT_BLOCK = 16


@dataclass
class AdamWResult:
    params: Params  # the reported iterate of each entry
    iterations: torch.Tensor  # steps run per entry
    converged: torch.Tensor  # bool per entry: stopped early by the loss-change rule
    reported_iteration: torch.Tensor  # number of steps taken by the reported iterate


def clip_gradients_(grads: list[torch.Tensor], grad_clip: GradClip) -> None:
    """Rescale each entry's gradients in place so that their norm is at most the threshold.

    ``grad_clip`` is one threshold for the norm of all four gradients together, or a pair of
    thresholds for the groups (A, B) and (Σ_Z and Σ_W factors) separately, or None (no clip).
    Each group of each entry gets g ← g · min(1, c / ‖g‖), as ``torch.nn.utils.clip_grad_norm_``.
    """
    if not grad_clip:
        return
    if isinstance(grad_clip, tuple | list):
        groups = [(grads[:2], grad_clip[0]), (grads[2:], grad_clip[1])]
    else:
        groups = [(grads, grad_clip)]
    for group, threshold in groups:
        norm = torch.sqrt(sum(frob2(g) for g in group))
        scale = torch.clamp(threshold / (norm + 1e-12), max=1.0).reshape(-1, 1, 1)
        for g in group:
            g.mul_(scale)


def run_adamw(
    instance: Instance,
    init: Params,
    beta: torch.Tensor,
    lam: torch.Tensor,
    steps: int,
    lr: float,
    weight_decay: float,
    grad_clip: GradClip,
    tol: float = 0.0,
    check_every: int = 500,
    parameterization: Parameterization = LogCholesky(),  # noqa: B008 (immutable)
    report: str = "last",
    device: str | torch.device = "cpu",
) -> AdamWResult:
    """``steps`` AdamW steps (decoupled weight decay) from ``init`` for every entry at once.

    Gradient clipping acts on each entry on its own (``clip_gradients_``). After each step the
    covariance factors are projected as the parameterisation requires. With ``tol > 0`` an entry
    stops (and leaves the batch) once its loss has changed by less than ``tol·(1 + |loss|)`` over
    the last ``check_every`` steps; ``tol = 0`` runs every step.

    ``report="last"`` returns each entry's final iterate; ``report="best"`` the iterate with the
    lowest loss among all iterates it visited, the final one included (the authors' protocol).

    The steps run on ``device`` (a torch device: ``cpu``, ``cuda``, ``cuda:1``); the result is
    returned on the CPU.
    """
    if report not in REPORTS:
        raise ValueError(f"report must be one of {REPORTS}, got {report!r}")
    device = torch.device(device)
    ops = operators_on(instance, device)
    entries = init.a.shape[0]
    beta = beta.reshape(-1).to(DTYPE).to(device)
    lam = lam.reshape(-1).to(DTYPE).to(device)
    tensors = [
        init.a.to(DTYPE).to(device, copy=True).contiguous(),
        init.b.to(DTYPE).to(device, copy=True).contiguous(),
        parameterization.raw_from_covariance(init.sigma_z.to(device)),
        parameterization.raw_from_covariance(init.sigma_w.to(device)),
    ]
    all_beta, all_lam = beta, lam
    moments = _Moments.zeros_like(tensors)
    final = [t.clone() for t in tensors]
    best = _BestIterates(tensors) if report == "best" else None
    iterations = torch.full((entries,), steps, dtype=torch.long, device=device)
    converged = torch.zeros(entries, dtype=torch.bool, device=device)
    active = torch.arange(entries, device=device)
    last_loss = None

    for step in range(1, steps + 1):
        # Each block of entries goes through the whole step (gradients, best iterate, clip,
        # update, projection) while its matrices are in the CPU cache
        losses = torch.empty(len(active), dtype=DTYPE, device=device)
        for block in _blocks(len(active), device):
            params = [t[block] for t in tensors]
            block_losses, grads = parameterization.loss_and_gradients(
                ops, *params, beta[block], lam[block]
            )
            losses[block] = block_losses
            if best is not None:
                best.offer(active[block], block_losses, params, iteration=step - 1)
            clip_gradients_(grads, grad_clip)
            adamw_update_(params, grads, moments.block(block), step, lr, weight_decay)
            parameterization.project_(params[2])
            parameterization.project_(params[3])
        if tol > 0 and step % check_every == 0:
            if last_loss is not None:
                done = (losses - last_loss).abs() < tol * (1.0 + losses.abs())
                if done.any():
                    finished = active[done]
                    for f, t in zip(final, tensors, strict=True):
                        f[finished] = t[done]
                    iterations[finished], converged[finished] = step, True
                    keep = ~done
                    active, beta, lam, losses = active[keep], beta[keep], lam[keep], losses[keep]
                    if active.numel() == 0:
                        break
                    tensors = [t[keep] for t in tensors]
                    moments = moments.select(keep)
            last_loss = losses
    with torch.no_grad():
        for f, t in zip(final, tensors, strict=True):
            f[active] = t
    reported, reported_iteration = final, iterations.clone()
    if best is not None:
        final_loss, _ = blockwise_loss_and_gradients(
            parameterization, ops, final, all_beta, all_lam
        )
        best.offer(torch.arange(entries, device=device), final_loss, final, iteration=iterations)
        reported, reported_iteration = best.tensors, best.iteration
    params = Params(
        a=reported[0].cpu(),
        b=reported[1].cpu(),
        sigma_z=parameterization.covariance(reported[2]).cpu(),
        sigma_w=parameterization.covariance(reported[3]).cpu(),
    )
    return AdamWResult(params, iterations.cpu(), converged.cpu(), reported_iteration.cpu())


def _blocks(entries: int, device: torch.device) -> list[slice]:
    """The blocks a step takes ``entries`` in: ``GRADIENT_BLOCK`` at a time on the CPU (cache-
    sized), all at once on an accelerator (which wants few, large kernels)."""
    size = GRADIENT_BLOCK if device.type == "cpu" else max(entries, 1)
    return [slice(start, start + size) for start in range(0, entries, size)]


# torch.optim.AdamW's defaults, which the authors' code keeps
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass
class _Moments:
    """AdamW's first and second moment estimates of each parameter tensor (entries first)."""

    exp_avg: list[torch.Tensor]
    exp_avg_sq: list[torch.Tensor]

    @classmethod
    def zeros_like(cls, tensors: list[torch.Tensor]) -> _Moments:
        return cls([torch.zeros_like(t) for t in tensors], [torch.zeros_like(t) for t in tensors])

    def block(self, block: slice) -> _Moments:
        """Views of the moments of the entries in ``block``."""
        return _Moments([m[block] for m in self.exp_avg], [v[block] for v in self.exp_avg_sq])

    def select(self, keep: torch.Tensor) -> _Moments:
        """The moments of the entries ``keep`` (a boolean mask) selects."""
        return _Moments([m[keep] for m in self.exp_avg], [v[keep] for v in self.exp_avg_sq])


def adamw_update_(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    moments: _Moments,
    step: int,
    lr: float,
    weight_decay: float,
) -> None:
    """The ``step``-th AdamW update of ``params`` in place (torch.optim.AdamW's fused kernel,
    its default β and ε): with g the gradient and t = ``step``,

        θ ← θ(1 − lr·wd),  m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²,
        θ ← θ − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
    """
    device = params[0].device
    # the fused kernel walks gradients in the parameters' memory order
    grads = [g.contiguous() for g in grads]
    # the kernel adds one to each step count before it uses it, as torch.optim.AdamW does
    counts = [torch.tensor(step - 1.0, dtype=torch.float32, device=device) for _ in params]
    adamw_functional(
        params,
        grads,
        moments.exp_avg,
        moments.exp_avg_sq,
        [],
        counts,
        fused=True,
        amsgrad=False,
        beta1=ADAM_BETAS[0],
        beta2=ADAM_BETAS[1],
        lr=lr,
        weight_decay=weight_decay,
        eps=ADAM_EPS,
        maximize=False,
    )


def operators_on(instance: Instance, device: torch.device) -> Operators:
    """The instance's operators with their tensors on ``device``."""
    ops = Operators(instance)
    for name, value in vars(ops).items():
        if isinstance(value, torch.Tensor):
            setattr(ops, name, value.to(device))
    return ops


class _BestIterates:
    """The lowest-loss iterate seen so far of every entry, with its loss and step count."""

    def __init__(self, tensors: list[torch.Tensor]):
        entries = tensors[0].shape[0]
        self.tensors = [t.clone() for t in tensors]
        device = tensors[0].device
        self.loss = torch.full((entries,), torch.inf, dtype=DTYPE, device=device)
        self.iteration = torch.zeros(entries, dtype=torch.long, device=device)

    def offer(
        self,
        entries: torch.Tensor,
        losses: torch.Tensor,
        tensors: list[torch.Tensor],
        iteration: int | torch.Tensor,
    ) -> None:
        """Keep the iterates ``tensors`` (of ``entries``, in ascending order) whose loss beats
        the best so far."""
        rows = torch.nonzero(losses < self.loss[entries]).squeeze(1)
        if rows.numel() == 0:
            return
        improved = entries[rows]
        self.loss[improved] = losses[rows]
        # While the loss falls every entry improves at every step: then the iterates are copied
        # as they are, without gathering them first
        every_row = rows.numel() == losses.numel()
        for kept, t in zip(self.tensors, tensors, strict=True):
            kept.index_copy_(0, improved, t.detach() if every_row else t.detach()[rows])
        if isinstance(iteration, torch.Tensor):
            iteration = iteration[rows]
        self.iteration[improved] = iteration


def blockwise_loss_and_gradients(
    parameterization: Parameterization,
    ops: Operators,
    tensors: list[torch.Tensor],
    beta: torch.Tensor,
    lam: torch.Tensor,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The parameterisation's loss and gradients, a block of entries at a time (``_blocks``)."""
    losses = torch.empty(len(beta), dtype=DTYPE, device=beta.device)
    grads = [torch.empty_like(t) for t in tensors]
    for block in _blocks(len(beta), beta.device):
        value, block_grads = parameterization.loss_and_gradients(
            ops, *(t[block] for t in tensors), beta[block], lam[block]
        )
        losses[block] = value
        for full, part in zip(grads, block_grads, strict=True):
            full[block] = part
    return losses, grads
