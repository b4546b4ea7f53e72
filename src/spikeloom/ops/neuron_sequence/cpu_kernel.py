"""``cpu_kernel`` backend: the neuron sequence op as a compiled C++/OpenMP kernel.

The extension ``spikeloom.ops.neuron_sequence._kernel`` (``_kernel.cpp``, built by ``setup.py``
when a C++ compiler with OpenMP is available) runs the whole time loop per chunk of up to 16 KiB
of neurons (4096 float32), the chunks spread over ``torch.get_num_threads()`` OpenMP threads,
state kept in local arrays. Its loops are compiled for AVX-512, AVX2 and the baseline ISA and
the best one the CPU supports runs (``kernel.isas()`` lists them; identical forward results,
the vector variants' backward uses fused multiply-adds). Large outputs come from a bounded pool
of reusable storages or get a transparent-huge-page hint and a parallel first touch
(:func:`_fresh`). It takes raw data pointers, sizes and strides from Python, so it needs no
torch headers (an ordinary setuptools extension, no build isolation issue, no torch ABI
coupling).

The op is registered with :mod:`torch.library` (``spikeloom::neuron_seq`` and its backward
``spikeloom::neuron_seq_backward``, each with a fake implementation, and
``register_autograd``), so ``torch.compile(fullgraph=True)`` traces through it.

Memory: forward saves only the pre-reset potential ``u`` (``[T, ...]``) and the decay; the
backward recomputes spikes, reset values and surrogate derivatives from ``u``. When the caller
does not need ``u`` (``need_u=False``: a spiking neuron without probes), forward writes only
spikes and saves its input ``x`` (and ``v0``) instead; the backward recomputes ``u`` chunk by
chunk into a per-thread scratch buffer sized to stay in the L2 cache, then runs the gradient
pass over it — identical gradients, one ``[T, ...]`` tensor less allocated and written.

Inputs: ``x`` and incoming gradients of any layout; a tensor whose neuron dimensions are
contiguous (any time stride) or broadcast (stride 0, e.g. the expanded gradient of ``sum()``)
is read in place, anything else is first copied to a contiguous tensor. float32 and float64
on CPU with a built-in surrogate run here; anything else (another dtype or device, a custom
surrogate class) falls back to the ``torch_fused`` backend.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...surrogate import ATan, Gaussian, Rectangular, Sigmoid, Surrogate, Triangular
from .._pool import OutputPool
from .spec import NeuronSpec
from .torch_fused import _sum_to_shape, neuron_sequence_fused

__all__ = ["neuron_sequence_cpu_kernel", "unavailable_reason", "kernel", "surrogate_code"]

try:  # optional compiled kernels (built by setup.py)
    from . import _kernel as kernel
except ImportError as _exc:  # pragma: no cover - depends on the build
    kernel = None
    _IMPORT_ERROR: str | None = str(_exc)
else:
    _IMPORT_ERROR = None

#: surrogate class -> (kernel id, name of its width field); exact types only (a subclass may
#: override ``grad``)
_SURROGATE_CODES: dict[type[Surrogate], tuple[int, str]] = {
    Rectangular: (0, "a"),
    Triangular: (1, "a"),
    Sigmoid: (2, "alpha"),
    ATan: (3, "alpha"),
    Gaussian: (4, "sigma"),
}
_DTYPES = (torch.float32, torch.float64)


def unavailable_reason() -> str | None:
    """``None`` when the extension imports, else why the ``cpu_kernel`` backend cannot run."""
    if kernel is not None:
        return None
    why = f" ({_IMPORT_ERROR})" if _IMPORT_ERROR else ""
    return (f"the C++ extension spikeloom.ops.neuron_sequence._kernel is not built{why}; "
            "run `python setup.py build_ext --inplace` (or pip install -e .) with a C++ "
            "compiler, or use torch_fused")


def surrogate_code(s: Surrogate) -> tuple[int, float] | None:
    """``(kernel id, width)`` of a built-in surrogate, ``None`` for one the kernel lacks."""
    entry = _SURROGATE_CODES.get(type(s))
    return None if entry is None else (entry[0], float(getattr(s, entry[1])))


def _inner_contiguous(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    expect = 1
    for n, st in zip(reversed(shape), reversed(strides)):
        if n != 1 and st != expect:
            return False
        expect *= n
    return True


def _operand(t: Tensor | None, lead: int) -> tuple[Tensor | None, tuple[int, int, int]]:
    """``t`` (``[T, ...]`` when ``lead`` = 1, ``[...]`` when 0) as a kernel operand
    ``(pointer, time stride, neuron stride)``; copied when its neuron dims are neither
    contiguous nor broadcast. ``None`` gives the null operand."""
    if t is None:
        return None, (0, 0, 0)
    shape, strides = tuple(t.shape[lead:]), tuple(t.stride()[lead:])
    if all(st == 0 or n == 1 for n, st in zip(shape, strides)):
        sn = 0
    elif _inner_contiguous(shape, strides):
        sn = 1
    else:
        t, sn = t.contiguous(), 1
    return t, (t.data_ptr(), t.stride(0) if lead else 0, sn)


def _threads() -> int:
    return max(1, torch.get_num_threads())


#: outputs at least this large get the transparent-huge-page hint before the kernel's first
#: write (below it the saving is small and the 2 MiB-aligned interior may be empty)
HUGE_PAGE_MIN_BYTES = 8 << 20
#: outputs at least this large are written with non-temporal (cache-bypassing) stores: they
#: cannot stay in the cache anyway, and skipping the read-for-ownership saves a third of the
#: write traffic; smaller ones are stored normally so the next layer finds them in cache
STREAM_MIN_BYTES = 32 << 20


def _stream(t: Tensor) -> bool:
    return t.numel() * t.element_size() >= STREAM_MIN_BYTES


def _new_output(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    t = torch.empty(shape, dtype=dtype)
    kernel.prepare_output(t.data_ptr(), t.numel() * t.element_size(), _threads())
    return t


#: large outputs come from here (:class:`~spikeloom.ops._pool.OutputPool`): storages of earlier
#: outputs that nothing refers to any more are reused instead of mapping and zeroing new memory;
#: ``OUTPUT_POOL.max_free_bytes = 0`` disables it, ``OUTPUT_POOL.clear()`` frees what it keeps
OUTPUT_POOL = OutputPool()


def _fresh(shape: torch.Size | tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """An uninitialised output buffer. A large one (``>= HUGE_PAGE_MIN_BYTES``) comes from
    :data:`OUTPUT_POOL`: a free storage of the same size when there is one, else a newly mapped
    buffer prepared by ``kernel.prepare_output`` — a transparent-huge-page hint (Linux
    ``madvise(MADV_HUGEPAGE)``; one page fault per 2 MiB instead of per 4 KiB) and a first
    touch of its pages split over the threads, so the operating system zeroes them in parallel
    (values are unaffected: the buffer is uninitialised either way)."""
    numel = 1
    for n in shape:
        numel *= n
    if numel * torch.empty((), dtype=dtype).element_size() < HUGE_PAGE_MIN_BYTES:
        return torch.empty(shape, dtype=dtype)
    return OUTPUT_POOL.empty(tuple(shape), dtype, _new_output)


@torch.library.custom_op("spikeloom::neuron_seq", mutates_args=(), device_types="cpu")
def _neuron_seq(x: Tensor, decay: Tensor, v0: Tensor | None, v_th: float, v_reset: float,
                soft: bool, fire_ge: bool, detach_reset: bool, surrogate: int,
                width: float, need_u: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Forward: spikes, pre-reset potentials (an empty tensor unless ``need_u``) and final
    state (surrogate args for backward)."""
    T, N = x.shape[0], x[0].numel()
    s = _fresh(x.shape, x.dtype)
    u = _fresh(x.shape, x.dtype) if need_u else x.new_empty((0,))
    v = torch.empty(x.shape[1:], dtype=x.dtype)
    if N:
        k = decay if decay.numel() == 1 else decay.expand(x.shape[1:])
        keep = (_operand(x, 1), _operand(k, 0), _operand(v0, 0))
        kernel.forward(x.dtype == torch.float64, T, N, *(o for _, o in keep), s.data_ptr(),
                       u.data_ptr() if need_u else 0, v.data_ptr(), v_th, v_reset, soft,
                       fire_ge, _threads(), -1, _stream(s))
    return s, u, v


@_neuron_seq.register_fake
def _neuron_seq_fake(x, decay, v0, v_th, v_reset, soft, fire_ge, detach_reset, surrogate,
                     width, need_u):
    u = torch.empty_like(x) if need_u else x.new_empty((0,))
    return torch.empty_like(x), u, x.new_empty(x.shape[1:])


@torch.library.custom_op("spikeloom::neuron_seq_backward", mutates_args=(), device_types="cpu")
def _neuron_seq_backward(u: Tensor | None, x: Tensor | None, v0: Tensor | None, decay: Tensor,
                         g_s: Tensor | None, g_u: Tensor | None, g_v: Tensor | None,
                         v_th: float, v_reset: float, soft: bool, fire_ge: bool,
                         detach_reset: bool, surrogate: int, width: float,
                         need_decay: bool) -> tuple[Tensor, Tensor]:
    """Backward: ``dL/dx`` ``[T, ...]`` and per-neuron ``dL/dk`` ``[...]`` (empty unless
    ``need_decay``); ``dL/dv0`` is ``dL/dx[0]``. Reads the saved ``u``, or, when ``u`` is
    ``None``, recomputes it from the forward's input ``x`` and initial state ``v0``."""
    ref = u if u is not None else x
    T, N = ref.shape[0], ref[0].numel()
    g_x = _fresh(ref.shape, ref.dtype)
    g_k = torch.empty(ref.shape[1:] if need_decay else (0,), dtype=ref.dtype)
    if N:
        k = decay if decay.numel() == 1 else decay.expand(ref.shape[1:])
        keep = (_operand(k, 0), _operand(g_s, 1), _operand(g_u, 1), _operand(g_v, 0))
        ops = [o for _, o in keep]
        if u is not None:
            u_c = u.contiguous()
            kernel.backward(ref.dtype == torch.float64, T, N, u_c.data_ptr(), *ops,
                            g_x.data_ptr(), g_k.data_ptr() if need_decay else 0, v_th, v_reset,
                            soft, fire_ge, detach_reset, surrogate, width, _threads(), -1,
                            None, None, _stream(g_x))
        else:
            rec = (_operand(x, 1), _operand(v0, 0))
            kernel.backward(ref.dtype == torch.float64, T, N, 0, *ops, g_x.data_ptr(),
                            g_k.data_ptr() if need_decay else 0, v_th, v_reset, soft, fire_ge,
                            detach_reset, surrogate, width, _threads(), -1,
                            *(o for _, o in rec), _stream(g_x))
    return g_x, g_k


@_neuron_seq_backward.register_fake
def _neuron_seq_backward_fake(u, x, v0, decay, g_s, g_u, g_v, v_th, v_reset, soft, fire_ge,
                              detach_reset, surrogate, width, need_decay):
    ref = u if u is not None else x
    return torch.empty_like(ref), ref.new_empty(ref.shape[1:] if need_decay else (0,))


def _setup_context(ctx, inputs, output) -> None:
    x, decay, v0, *params, need_u = inputs
    if need_u:  # backward reads u
        ctx.save_for_backward(output[1], None, None, decay)
    else:  # backward recomputes u from the input and the initial state
        ctx.save_for_backward(None, x, v0, decay)
    ctx.params = params
    ctx.v0_given = v0 is not None
    ctx.set_materialize_grads(False)


def _backward(ctx, g_s, g_u, g_v):
    u, x, v0, decay = ctx.saved_tensors
    need_x, need_k, need_v0 = ctx.needs_input_grad[:3]
    g_x, g_k = _neuron_seq_backward(u, x, v0, decay, g_s, g_u, g_v, *ctx.params,
                                    need_decay=need_k)
    g_decay = _sum_to_shape(g_k, decay.shape) if need_k else None
    g_v0 = g_x[0].clone() if (need_v0 and ctx.v0_given) else None
    return (g_x if need_x else None, g_decay, g_v0) + (None,) * (len(ctx.params) + 1)


_neuron_seq.register_autograd(_backward, setup_context=_setup_context)


def neuron_sequence_cpu_kernel(
    x: Tensor, decay: float | Tensor, spec: NeuronSpec, v0: Tensor | None = None, *,
    need_u: bool = True,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Same contract as :func:`.reference.neuron_sequence_reference`; falls back to
    ``torch_fused`` for a dtype, device or surrogate the kernel does not cover. With
    ``need_u=False`` only spikes are written and backward recomputes ``u`` from ``x``."""
    code = surrogate_code(spec.surrogate)
    if (code is None or x.dtype not in _DTYPES or x.device.type != "cpu"
            or (v0 is not None and (v0.dtype != x.dtype or v0.device != x.device))):
        return neuron_sequence_fused(x, decay, spec, v0, need_u=need_u)
    if not isinstance(decay, Tensor):
        decay = torch.tensor(float(decay), dtype=x.dtype)
    s, u, v = _neuron_seq(x, decay, v0, spec.v_th, spec.v_reset, spec.soft, spec.fire_ge,
                          spec.detach_reset, code[0], code[1], need_u)
    return s, (u if need_u else None), v
