"""The n × n work of the authors' AdamW gradient on the CPU, one matrix at a time through
BLAS and LAPACK.

Torch's batched CPU operators offer full products only (a triangular or symmetric operand costs
as much as a full one) and copy every matrix before each LAPACK call. These kernels call BLAS
and LAPACK (SciPy's OpenBLAS) on each entry's matrices in place, with the cheapest routine for
each structure: Σ = LLᵀ by a symmetric rank-k product (syrk), its Cholesky factor and inverse in
place (potrf, a blocked triangular inverse, lauum), the products with F = Σ⁻¹ by gemm and the
product with the lower-triangular L by trmm.

Torch tensors are row-major; BLAS sees a row-major n × n matrix X as the column-major Xᵀ. Every
call below is written for that transposed view: a lower-triangular L is an upper-triangular Lᵀ
to BLAS, and symmetric matrices are their own view.
"""

from __future__ import annotations

import functools

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


# Below this size LAPACK's own triangular inverse is as fast as the blocked one (one core, µs:
# n = 50 11 vs 13, n = 64 20 vs 19, n = 100 57 vs 41)
BLOCKED_INVERSE_MIN = 64


def _invert_lower_(c: np.ndarray) -> None:
    """C ← C⁻¹ for the lower-triangular C of a column-major matrix, in place.

    OpenBLAS's trtri runs at a fraction of its matrix-product speed at n ≈ 100, so larger
    matrices go through one 2 × 2 block step, whose off-diagonal block is two triangular
    products:

        [C₁₁ 0; C₂₁ C₂₂]⁻¹ = [C₁₁⁻¹ 0; −C₂₂⁻¹C₂₁C₁₁⁻¹ C₂₂⁻¹]

    The blocks are copied out and back (the wrappers take contiguous arrays only).
    """
    n = c.shape[0]
    if n < BLOCKED_INVERSE_MIN:
        _into(c, _checked(lapack.dtrtri(c, lower=1, overwrite_c=1)))
        return
    h = n // 2
    top = _checked(lapack.dtrtri(np.asfortranarray(c[:h, :h]), lower=1, overwrite_c=1))
    bottom = _checked(lapack.dtrtri(np.asfortranarray(c[h:, h:]), lower=1, overwrite_c=1))
    off = blas.dtrmm(-1.0, bottom, np.asfortranarray(c[h:, :h]), lower=1, overwrite_b=1)
    c[h:, :h] = blas.dtrmm(1.0, top, off, side=1, lower=1, overwrite_b=1)
    c[:h, :h] = top
    c[h:, h:] = bottom


def _checked(result: tuple[np.ndarray, int]) -> np.ndarray:
    matrix, info = result
    if info != 0:
        raise np.linalg.LinAlgError(f"LAPACK returned info = {info}")
    return matrix


def precision_products(
    chol: torch.Tensor, epsilon: float, right: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F = Σ⁻¹ of Σ = LLᵀ + εI, the product F·U and log|Σ| for each lower-triangular L of
    ``chol`` (k × n × n) and n × r matrix U of ``right`` (k × n × r; float64, CPU, contiguous).

    Per entry: Σ by syrk (L as Lᵀ to BLAS: Σ = (Lᵀ)ᵀLᵀ), C = chol(Σ) by potrf, log|Σ| =
    2 Σ log C_ii, F = C⁻ᵀC⁻¹ by a triangular inverse (``_invert_lower_``) and lauum, all in place
    in one triangle; then the triangle is mirrored for all entries at once and F·U is one gemm
    per entry. Returns (F, F·U, log|Σ|).
    """
    k, n = chol.shape[0], chol.shape[-1]
    log_det = np.empty(k)
    triangles = torch.empty_like(chol)
    factors, results = _views(chol), _views(triangles)
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
        _into(sigma, c)
        log_det[i] = 2.0 * np.log(sigma.diagonal()).sum()
        _invert_lower_(sigma)
        _into(sigma, _checked(lapack.dlauum(sigma, lower=1, overwrite_c=1)))
    # the triangle filled is the lower one of each column-major view: the upper one of the tensor
    precision = torch.where(_upper_mask(n), triangles, triangles.mT)
    products = torch.empty_like(right)
    inputs, outputs, matrices = _views(right), _views(products), _views(precision)
    for i in range(k):
        # row-major F·U is (F·U)ᵀ = UᵀF to BLAS
        _into(outputs[i], blas.dgemm(1.0, inputs[i], matrices[i], c=outputs[i], overwrite_c=1))
    return precision, products, torch.from_numpy(log_det)


@functools.cache
def _upper_mask(n: int) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool).triu()


def factor_gradient(
    precision: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor,
    chol: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """(F − scale·F² − VWᵀ)L for each entry's symmetric F of ``precision``, n × r matrices V of
    ``left`` and W of ``right`` and lower-triangular L of ``chol`` (float64, CPU, contiguous).

    F − scale·F² − VWᵀ must be symmetric (it is F − FRF). To BLAS the row-major result is
    Lᵀ(F − scale·F² − WVᵀ): a copy of F, two gemm and a trmm with the upper Lᵀ, in place.
    """
    gradient = precision.clone()
    targets, squares, factors = _views(gradient), _views(precision), _views(chol)
    lefts, rights = _views(left), _views(right)
    for i in range(gradient.shape[0]):
        f, target = squares[i], targets[i]
        _into(
            target,
            blas.dgemm(-1.0, rights[i], lefts[i], trans_a=1, beta=1.0, c=target, overwrite_c=1),
        )
        _into(target, blas.dgemm(-scale, f, f, beta=1.0, c=target, overwrite_c=1))
        _into(target, blas.dtrmm(1.0, factors[i], target, side=0, lower=0, overwrite_b=1))
    return gradient
