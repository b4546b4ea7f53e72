"""Mode factorisations, rank checks and the pairwise contraction used by the tensor formats.

A weight matrix ``W ∈ R^{M×N}`` is tensorised with output modes ``m`` (``M = Π m_k``) and
input modes ``n`` (``N = Π n_k``), row-major: ``i ↔ (i_1..i_d)``, ``j ↔ (j_1..j_d)`` (spec A4).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

import torch
from torch import Tensor

from ...errors import ConfigError

__all__ = ["factorize", "check_modes", "contract_chain", "chain_macs"]

_LETTERS = string.ascii_letters


def factorize(n: int, d: int) -> list[int]:
    """Split ``n`` into ``d`` integer factors as equal as possible (largest first).

    Prime factors are assigned greedily to the currently smallest factor, so
    ``factorize(1024, 4) == [4, 4, 8, 8]`` sorted descending -> ``[8, 8, 4, 4]``; factors of 1
    appear when ``n`` has fewer than ``d`` prime factors.
    """
    if n < 1 or d < 1:
        raise ConfigError(f"factorize needs n >= 1 and d >= 1, got n={n}, d={d}")
    primes, k, rest = [], 2, n
    while k * k <= rest:
        while rest % k == 0:
            primes.append(k)
            rest //= k
        k += 1
    if rest > 1:
        primes.append(rest)
    out = [1] * d
    for p in sorted(primes, reverse=True):
        i = min(range(d), key=lambda j: out[j])
        out[i] *= p
    return sorted(out, reverse=True)


def check_modes(layer: str, size: int, modes: Sequence[int], what: str) -> list[int]:
    """Validate that ``modes`` are positive integers whose product is ``size``.

    Raises:
        ConfigError: naming ``layer``, the product found and a valid factorisation.
    """
    modes = [int(m) for m in modes]
    if not modes or any(m < 1 for m in modes) or math.prod(modes) != size:
        raise ConfigError(
            f"{layer}: {what} modes {modes} must be positive integers whose product is {size} "
            f"(got product {math.prod(modes) if modes else 0}); "
            f"e.g. {factorize(size, max(len(modes), 2))}"
        )
    return modes


def mode_pair(
    layer: str, n_in: int, n_out: int, in_modes: Sequence[int] | None,
    out_modes: Sequence[int] | None, d: int, what: str = "",
) -> tuple[list[int], list[int]]:
    """Input and output modes of a tensorized layer: the given ones (validated) or a balanced
    factorisation into ``d`` factors; both lists must have the same length.

    Raises:
        ConfigError: naming ``layer``, for a product that is not the size or unequal lengths.
    """
    sep = f"{what} " if what else ""
    n = check_modes(layer, n_in, in_modes if in_modes is not None else factorize(n_in, d),
                    f"input {sep}".strip())
    m = check_modes(layer, n_out, out_modes if out_modes is not None else factorize(n_out, d),
                    f"output {sep}".strip())
    if len(n) != len(m):
        raise ConfigError(f"{layer}: in modes {n} and out modes {m} need the same length")
    return n, m


def contract_chain(x: Tensor, specs: Sequence[str], factors: Sequence[Tensor], out: str) -> Tensor:
    """Contract ``x`` with ``factors`` one at a time, left to right (a fixed, counted order).

    ``specs[0]`` names the axes of ``x``, ``specs[i+1]`` those of ``factors[i]``; after each
    step the axes still needed later (or in ``out``) are kept. Returns the tensor with axes
    ``out``.
    """
    cur, cur_ax = x, specs[0]
    for i, (f, ax) in enumerate(zip(factors, specs[1:])):
        later = set(out).union(*[set(s) for s in specs[i + 2:]])
        keep = "".join(c for c in dict.fromkeys(cur_ax + ax) if c in later)
        cur = torch.einsum(f"{cur_ax},{ax}->{keep}", cur, f)
        cur_ax = keep
    if cur_ax != out:
        cur = torch.einsum(f"{cur_ax}->{out}", cur)
    return cur


def chain_macs(specs: Sequence[str], sizes: dict[str, int], out: str) -> list[int]:
    """Multiply-accumulates of each step of :func:`contract_chain` (per unit of unsized axes).

    Axes missing from ``sizes`` (the batch axis) count as 1, so the result is per sample. One
    step costs the product of the sizes of all axes of its two operands.
    """
    cur_ax, costs = specs[0], []
    for i, ax in enumerate(specs[1:]):
        later = set(out).union(*[set(s) for s in specs[i + 2:]])
        union = dict.fromkeys(cur_ax + ax)
        costs.append(math.prod(sizes.get(c, 1) for c in union))
        cur_ax = "".join(c for c in union if c in later)
    return costs


def letters(k: int, start: int = 0) -> str:
    """``k`` distinct einsum letters from position ``start``."""
    if start + k > len(_LETTERS):
        raise ConfigError(f"too many tensor modes for one contraction ({start + k} axes)")
    return _LETTERS[start:start + k]
