"""Training-memory options for backpropagation through time (results unchanged).

BPTT keeps, for every layer and every time step, the tensors its backward needs; memory grows
linearly with ``T``. Two options cut it without changing the loss or the gradients:

* ``spike_bits`` — weighted layers (role ``synapse``: ``nn.Linear``, ``nn.Conv*``) whose
  input is binary save it as **bits** (1 bit per spike instead of 32, packed 8 per byte)
  instead of floats. Each saved tensor is checked while packing: one that is not all 0/1
  (an analog input, the weights) is saved as it is, so the option is exact by construction.
* ``checkpoint="block"`` — gradient checkpointing over **blocks**: each block runs forward
  without keeping its internals, saves only its input (as bits when binary) and recomputes
  itself in backward. A block is the smallest container module that directly holds a spiking
  neuron (a ``conv-norm-neuron`` stage, a residual block), outermost only, never the model
  itself. Buffers (batch-norm running statistics) are restored after the recomputation, so
  they are updated once per step, and the random-number state is replayed (dropout masks).
  With both options, bits are used for the saved block inputs (the recomputation runs
  without packing: the block's float input is alive then anyway).

The neuron op itself (backends ``cpu_kernel`` and ``torch_fused``) already saves only the
pre-reset potential ``u`` and recomputes spikes, resets and surrogate derivatives from it.

Per model::

    from spikeloom.memory import apply_memory_options
    handle = apply_memory_options(model, spike_bits=True, checkpoint="block")
    ...
    handle.remove()          # back to plain BPTT

In training, the config key ``memory`` takes the same keywords
(``memory: {spike_bits: true, checkpoint: block}``).

Limits: a checkpointed block must take one tensor and return one tensor (other blocks are
left alone); monitors see a checkpointed block's neurons twice per step (forward and
recomputation); packing runs on the CPU kernel when built, else in torch. The replayed
random state is the CPU's and, for a CUDA input, its device's.
"""

from __future__ import annotations

import functools
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ConfigError
from .walk import role_of

__all__ = [
    "CHECKPOINT_MODES",
    "MemoryHandle",
    "apply_memory_options",
    "checkpoint_blocks",
    "find_blocks",
    "enable_spike_bits",
    "pack_bits",
    "unpack_bits",
    "validate_memory_options",
]

#: ways to checkpoint: ``"none"`` or ``"block"``
CHECKPOINT_MODES: tuple[str, ...] = ("none", "block")
_MIN_PACK = 1024  # smaller tensors are not worth packing
# set while a checkpointed block is recomputed in backward: its input is alive as a float
# tensor then anyway, so packing it again would only add a copy
_RECOMPUTING = threading.local()


@dataclass(frozen=True)
class _Bits:
    """A 0/1 tensor stored as bits: ``data`` uint8 (8 values per byte, first in bit 0)."""

    data: Tensor
    shape: torch.Size
    dtype: torch.dtype


def _kernel():
    from .ops.neuron_sequence.cpu_kernel import kernel

    return kernel


def pack_bits(t: Tensor) -> _Bits | None:
    """``t`` packed into bits, or ``None`` when it is not a floating tensor of only 0 and 1."""
    if not t.is_floating_point() or t.numel() == 0:
        return None
    n = t.numel()
    k = _kernel()
    if (k is not None and t.device.type == "cpu" and t.is_contiguous()
            and t.dtype in (torch.float32, torch.float64)):
        out = torch.empty((n + 7) // 8, dtype=torch.uint8)
        if not k.pack_bits(t.dtype == torch.float64, t.data_ptr(), n, out.data_ptr()):
            return None
        return _Bits(out, t.shape, t.dtype)
    if not bool(((t == 0) | (t == 1)).all()):
        return None
    flat = torch.nn.functional.pad(t.reshape(-1).to(torch.uint8), (0, (-n) % 8))
    weights = 2 ** torch.arange(8, device=t.device, dtype=torch.uint8)
    return _Bits((flat.view(-1, 8) * weights).sum(1, dtype=torch.uint8), t.shape, t.dtype)


def unpack_bits(b: _Bits) -> Tensor:
    """The tensor :func:`pack_bits` packed (contiguous)."""
    n = b.shape.numel()
    k = _kernel()
    if (k is not None and b.data.device.type == "cpu"
            and b.dtype in (torch.float32, torch.float64)):
        out = torch.empty(b.shape, dtype=b.dtype)
        if n:
            k.unpack_bits(b.dtype == torch.float64, b.data.data_ptr(), n, out.data_ptr())
        return out
    shifts = torch.arange(8, device=b.data.device, dtype=torch.uint8)
    bits = (b.data.unsqueeze(1) >> shifts) & 1
    return bits.reshape(-1)[:n].to(b.dtype).view(b.shape)


def _pack_saved(t: Tensor) -> Any:
    if t.numel() >= _MIN_PACK:
        packed = pack_bits(t)
        if packed is not None:
            return packed
    return t


def _unpack_saved(obj: Any) -> Tensor:
    return unpack_bits(obj) if isinstance(obj, _Bits) else obj


def enable_spike_bits(model: nn.Module) -> list[Any]:
    """Save binary inputs of every synapse layer of ``model`` as bits; returns hook handles.

    A forward pre-hook on each ``nn.Linear``/``nn.Conv*`` enters a saved-tensor hook that
    packs 0/1 tensors; the matching forward hook (called even when forward raises) leaves it.
    """
    handles: list[Any] = []
    for m in model.modules():
        if role_of(m) != "synapse":
            continue
        stack: list[Any] = []

        def enter(mod, args, _stack=stack):
            ctx = None
            if not getattr(_RECOMPUTING, "on", False):
                ctx = torch.autograd.graph.saved_tensors_hooks(_pack_saved, _unpack_saved)
                ctx.__enter__()
            _stack.append(ctx)

        def leave(mod, args, out, _stack=stack):
            ctx = _stack.pop()
            if ctx is not None:
                ctx.__exit__(None, None, None)

        handles.append(m.register_forward_pre_hook(enter))
        handles.append(m.register_forward_hook(leave, always_call=True))
    return handles


def find_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The checkpoint blocks of ``model``: the outermost container modules (no role of their
    own, not ``model``) with a spiking neuron among their direct children."""
    blocks: list[tuple[str, nn.Module]] = []

    def walk(m: nn.Module, name: str) -> None:
        for child_name, child in m.named_children():
            full = f"{name}.{child_name}" if name else child_name
            if role_of(child) is not None:
                continue
            if any(role_of(c) == "neuron" for c in child.children()):
                blocks.append((full, child))
            else:
                walk(child, full)

    walk(model, "")
    return blocks


class _BlockCheckpoint(torch.autograd.Function):
    """Run a block without keeping its graph; recompute it in backward."""

    @staticmethod
    def forward(ctx, block: nn.Module, run, x: Tensor, *params: Tensor) -> Tensor:
        ctx.block, ctx.run, ctx.n_params = block, run, len(params)
        ctx.rng = torch.get_rng_state()
        ctx.cuda = x.device if x.is_cuda else None
        ctx.cuda_rng = torch.cuda.get_rng_state(x.device) if x.is_cuda else None
        ctx.x_meta = (x.requires_grad,)
        bits = pack_bits(x) if x.numel() >= _MIN_PACK else None
        ctx.bits = bits
        ctx.save_for_backward(*(() if bits is not None else (x,)))
        with torch.no_grad():
            return run(x)

    @staticmethod
    def backward(ctx, g_out: Tensor):
        x = unpack_bits(ctx.bits) if ctx.bits is not None else ctx.saved_tensors[0].detach()
        x = x.requires_grad_(ctx.x_meta[0])
        params = [p for p in ctx.block.parameters() if p.requires_grad]
        buffers = [b.clone() for b in ctx.block.buffers()]
        cuda = [] if ctx.cuda is None else [ctx.cuda]
        was = getattr(_RECOMPUTING, "on", False)
        _RECOMPUTING.on = True
        try:
            with torch.random.fork_rng(devices=cuda), torch.enable_grad():
                torch.set_rng_state(ctx.rng)
                if ctx.cuda is not None:
                    torch.cuda.set_rng_state(ctx.cuda_rng, ctx.cuda)
                out = ctx.run(x)
        finally:
            _RECOMPUTING.on = was
        inputs = ([x] if x.requires_grad else []) + params
        grads = list(torch.autograd.grad(out, inputs, g_out, allow_unused=True)) \
            if out.requires_grad and inputs else [None] * len(inputs)
        with torch.no_grad():  # running statistics were updated in forward already
            for b, saved in zip(ctx.block.buffers(), buffers):
                b.copy_(saved)
        g_x = grads.pop(0) if x.requires_grad else None
        return (None, None, g_x, *grads)


def _checkpointed_forward(block: nn.Module, run, x: Any, *args: Any, **kwargs: Any) -> Any:
    if args or kwargs or not isinstance(x, Tensor) or not torch.is_grad_enabled():
        return run(x, *args, **kwargs)
    params = [p for p in block.parameters() if p.requires_grad]
    if not x.requires_grad and not params:
        return run(x)
    return _BlockCheckpoint.apply(block, run, x, *params)


class _RestoreForward:
    def __init__(self, block: nn.Module) -> None:
        self.block = block

    def remove(self) -> None:
        self.block.__dict__.pop("forward", None)


def checkpoint_blocks(model: nn.Module, mode: str = "block") -> list[Any]:
    """Checkpoint every block of ``model`` (:func:`find_blocks`); returns removal handles."""
    if mode not in CHECKPOINT_MODES:
        raise ConfigError(f"checkpoint must be one of {', '.join(CHECKPOINT_MODES)}, got "
                          f"{mode!r}")
    if mode == "none":
        return []
    handles = []
    for _, block in find_blocks(model):
        run = type(block).forward.__get__(block)
        block.forward = functools.partial(_checkpointed_forward, block, run)
        handles.append(_RestoreForward(block))
    return handles


@dataclass
class MemoryHandle:
    """What :func:`apply_memory_options` installed; :meth:`remove` undoes it."""

    handles: list[Any] = field(default_factory=list)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def validate_memory_options(options: dict[str, Any]) -> dict[str, Any]:
    """Check a ``memory`` mapping (``spike_bits``: bool, ``checkpoint``: a mode); returns it
    with defaults filled in. Raises :class:`ConfigError` naming a bad key or value."""
    if not isinstance(options, dict):
        raise ConfigError(f"memory must be a mapping, got {type(options).__name__}")
    unknown = sorted(set(options) - {"spike_bits", "checkpoint"})
    if unknown:
        raise ConfigError(f"unknown memory option(s): {', '.join(unknown)}; valid: "
                          "spike_bits, checkpoint")
    out = {"spike_bits": options.get("spike_bits", False),
           "checkpoint": options.get("checkpoint", "none")}
    if not isinstance(out["spike_bits"], bool):
        raise ConfigError(f"memory.spike_bits must be true or false, got {out['spike_bits']!r}")
    if out["checkpoint"] not in CHECKPOINT_MODES:
        raise ConfigError(f"memory.checkpoint must be one of {', '.join(CHECKPOINT_MODES)}, "
                          f"got {out['checkpoint']!r}")
    return out


def apply_memory_options(model: nn.Module, *, spike_bits: bool = False,
                         checkpoint: str = "none") -> MemoryHandle:
    """Install the memory options on ``model`` (see the module docstring)."""
    opts = validate_memory_options({"spike_bits": spike_bits, "checkpoint": checkpoint})
    handle = MemoryHandle()
    if opts["spike_bits"] or opts["checkpoint"] != "none":
        # the kernels' output pool keeps freed buffers for reuse: off while saving memory, i.e.
        # until the handle is removed or the model is garbage-collected
        from .ops.neuron_sequence.cpu_kernel import OUTPUT_POOL

        suspension = OUTPUT_POOL.suspend()
        weakref.finalize(model, suspension.remove)
        handle.handles.append(suspension)
    if opts["spike_bits"]:
        handle.handles += enable_spike_bits(model)
    handle.handles += checkpoint_blocks(model, opts["checkpoint"])
    return handle
