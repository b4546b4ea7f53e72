"""Stored size of a (compressed) model: bits per parameter from the compression applied.

A tensor's storage width comes from the module that owns it: a parametrization (or the module
itself) with an integer attribute ``bits`` (quantizers, discrete-weight layers) stores its
tensor at that width; everything else at its dtype's width. A buffer of a quantizer (scales,
clip values) counts at its dtype's width.
"""

from __future__ import annotations

from torch import nn

__all__ = ["tensor_bits", "model_bytes", "param_count"]


def _stored_bits(module: nn.Module, pname: str, default: int) -> int:
    """Bits per element of ``module.<pname>`` as stored after compression."""
    plist = getattr(getattr(module, "parametrizations", None), pname, None)
    if plist is not None:
        bits = [getattr(p, "bits", None) for p in plist]
        bits = [b for b in bits if isinstance(b, int)]
        if bits:
            return min(bits)
    b = getattr(module, "weight_bits", None) if pname == "weight" else None
    return b if isinstance(b, int) else default


def tensor_bits(model: nn.Module) -> dict[str, tuple[int, int]]:
    """``{qualified tensor name: (numel, bits per element)}`` of every parameter."""
    out: dict[str, tuple[int, int]] = {}
    for mname, m in model.named_modules():
        if mname.endswith("parametrizations") or ".parametrizations." in mname:
            continue
        plists = getattr(m, "parametrizations", None)
        for pname, p in m.named_parameters(recurse=False):
            out[f"{mname}.{pname}" if mname else pname] = (p.numel(), p.element_size() * 8)
        if plists is not None:
            for pname in plists.keys():
                orig = plists[pname].original
                full = f"{mname}.{pname}" if mname else pname
                out[full] = (orig.numel(), _stored_bits(m, pname, orig.element_size() * 8))
        elif isinstance(getattr(m, "weight", None), nn.Parameter):
            full = f"{mname}.weight" if mname else "weight"
            w = m.weight
            out[full] = (w.numel(), _stored_bits(m, "weight", w.element_size() * 8))
    return out


def param_count(model: nn.Module) -> int:
    """Number of parameters (parametrized tensors counted once)."""
    return sum(n for n, _ in tensor_bits(model).values())


def model_bytes(model: nn.Module) -> float:
    """Bytes to store the parameters at their compressed widths."""
    return sum(n * b for n, b in tensor_bits(model).values()) / 8.0
