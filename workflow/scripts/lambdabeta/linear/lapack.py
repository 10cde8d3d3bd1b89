"""The n × n work of the authors' AdamW gradient on the CPU, one matrix at a time through
BLAS and LAPACK.

Torch's batched CPU operators offer full products only (a triangular or symmetric operand costs
as much as a full one) and copy every matrix before each LAPACK call. These kernels call BLAS
and LAPACK (SciPy's OpenBLAS) on each entry's matrices in place, with the cheapest routine for
each structure: Σ = LLᵀ by a symmetric rank-k product (syrk), its Cholesky factor and inverse in
place (potrf, potri) and the product with the lower-triangular L by trmm.

Torch tensors are row-major; BLAS sees a row-major n × n matrix X as the column-major Xᵀ. Every
call below is written for that transposed view: a lower-triangular L is an upper-triangular Lᵀ
to BLAS, and symmetric matrices are their own view.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import blas, lapack
from threadpoolctl import threadpool_limits


def use_threads(threads: int) -> None:
    """Run torch's operators and the BLAS these kernels call (SciPy's OpenBLAS, which would
    otherwise take every core) on ``threads`` threads."""
    torch.set_num_threads(threads)
    threadpool_limits(threads, user_api="blas")


def _views(tensor: torch.Tensor) -> np.ndarray:
    """Column-major NumPy views (sharing memory) of the row-major matrices of a (k, n, n)
    float64 CPU tensor: view[i] is tensor[i]ᵀ to BLAS."""
    return tensor.numpy().transpose(0, 2, 1)


def _into(view: np.ndarray, result: np.ndarray) -> np.ndarray:
    """``result`` of a BLAS call asked to overwrite ``view``, made sure to be in ``view``: the
    wrappers overwrite in place when the array's layout allows, and copy otherwise."""
    if result.ctypes.data != view.ctypes.data:
        view[...] = result
    return view


def precision_and_log_det(chol: torch.Tensor, epsilon: float, out: torch.Tensor) -> torch.Tensor:
    """F = Σ⁻¹ of Σ = LLᵀ + εI (the full symmetric matrix, into ``out``) and log|Σ|, for each
    lower-triangular L of ``chol`` (k × n × n, float64, CPU, contiguous).

    Per entry: Σ by syrk (L as Lᵀ to BLAS: Σ = (Lᵀ)ᵀLᵀ), C = chol(Σ) and F = C⁻ᵀC⁻¹ by potrf
    and potri in place, log|Σ| = 2 Σ log C_ii; the triangle potri leaves is then mirrored.
    """
    k, n = chol.shape[0], chol.shape[-1]
    log_det = np.empty(k)
    factors, results = _views(chol), _views(out)
    epsilon_identity = epsilon * np.eye(n, order="F")
    for i in range(k):
        sigma = results[i]
        sigma[...] = epsilon_identity
        _into(
            sigma, blas.dsyrk(1.0, factors[i], trans=1, lower=1, beta=1.0, c=sigma, overwrite_c=1)
        )
        c, info = lapack.dpotrf(sigma, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"Σ_Z of entry {i} is not positive definite")
        log_det[i] = 2.0 * np.log(c.diagonal()).sum()
        _into(sigma, lapack.dpotri(c, lower=1, overwrite_c=1)[0])
    # potri fills the lower triangle of each column-major view: the upper one of the tensor
    out.triu_()
    out += out.mT.tril(-1)
    return torch.from_numpy(log_det)


def subtract_scaled_square_and_multiply_(
    residual: torch.Tensor, precision: torch.Tensor, chol: torch.Tensor, scale: float
) -> torch.Tensor:
    """``residual`` ← (residual − scale·F²) L in place, for each entry's symmetric F of
    ``precision`` and lower-triangular L of ``chol`` (all k × n × n, float64, CPU, contiguous).

    ``residual`` must be symmetric once scale·F² is subtracted (it is F − FRF). To BLAS the
    row-major result (F − FRF)L is Lᵀ(F − FRF): a gemm then a trmm with the upper Lᵀ, in place.
    """
    targets, squares, factors = _views(residual), _views(precision), _views(chol)
    for i in range(residual.shape[0]):
        f, target = squares[i], targets[i]
        _into(target, blas.dgemm(-scale, f, f, beta=1.0, c=target, overwrite_c=1))
        _into(target, blas.dtrmm(1.0, factors[i], target, side=0, lower=0, overwrite_b=1))
    return residual
