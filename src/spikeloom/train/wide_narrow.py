"""Go Wide, Then Narrow (WIN): train a deep thin network by layer-wise imitation of a wide one.

Zhou et al., "Go Wide, Then Narrow: Efficient Training of Deep Thin Networks", ICML 2020
(arXiv:2007.00811); spec C4. Only the abstract and a summary of its Fig. 1 were readable, so the
losses and schedule below are [RECON] choices, each a named option.

Objects. A :class:`BlockNet` is ``head ∘ block_K ∘ … ∘ block_1 ∘ stem``; every block and the
head start with a linear or convolution layer applied to the width-``w`` signal (the *first
synapse*, :func:`first_synapse`), so a linear map in front of them can be merged into them
exactly. The wide net has the same depth and block structure with every hidden width times
``factor``. Between the thin net's blocks the recipe inserts pairs of channel maps
(:class:`ChannelMap`, a 1×1 linear map on the channel axis): ``U_i: w → W`` after stem/block
``i`` (lift the thin output to the wide width, to compare it with the wide block's output) and
``V_i: W → w`` in front of block ``i`` (map back to the thin width).

Stages (:class:`WideThenNarrow`):

1. train the wide net on the task (:func:`train_task`);
2. bottom to top, for ``i = 0`` (stem) ``… K``: train ``V_i`` (not for the stem), thin block
   ``i`` and ``U_i`` to minimise ``MSE(U_i S_i(z_{i−1}), h^wide_i)`` with the prefix frozen;
   ``z_{i−1} = V_i U_{i−1} S_{i−1}(…)`` is the thin prefix's own output ("sequential",
   default) or, with ``teacher_forcing=True``, ``V_i(h^wide_{i−1})`` (a [RECON] option);
3. merge (:meth:`WideThenNarrow.merge`): block ``i``'s first synapse absorbs ``V_i U_{i−1}``
   and the head — copied from the wide net — absorbs ``U_K`` (``head_S(z) = head_W(U_K z)``);
   the result is a plain thin :class:`BlockNet` computing exactly what the augmented net did;
4. fine-tune the thin net on the task.

Works for ANN and spiking blocks alike: ``channel_dim`` says which axis is the channel axis
(2 for time-major spiking frames ``[T, B, C, H, W]``, 1 for ``[B, C, H, W]``, -1 for features).
Pitfall (spec): merging is exact only if nothing nonlinear sits in front of a block's first
synapse and the head's first operations commute with a channel map (average pooling does,
flatten + linear over positions does not): :func:`first_synapse` checks the first point.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..models.blocknet import BlockNet

__all__ = [
    "BlockNet",
    "ChannelMap",
    "WideThenNarrow",
    "first_synapse",
    "merge_channel_map",
    "train_task",
]

_SYN = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class ChannelMap(nn.Module):
    """A bias-free linear map ``[out, in]`` on axis ``channel_dim`` (a 1×1 convolution)."""

    def __init__(self, in_ch: int, out_ch: int, channel_dim: int = -1,
                 weight: Tensor | None = None) -> None:
        super().__init__()
        self.channel_dim = channel_dim
        w = torch.empty(out_ch, in_ch) if weight is None else weight.detach().clone()
        if weight is None:
            nn.init.orthogonal_(w)
        self.weight = nn.Parameter(w)

    def forward(self, h: Tensor) -> Tensor:
        return torch.movedim(torch.movedim(h, self.channel_dim, -1) @ self.weight.T, -1,
                             self.channel_dim)


def first_synapse(module: nn.Module) -> nn.Module:
    """The first linear/conv layer of ``module`` in definition order.

    Raises:
        ConfigError: when none exists or a module with parameters or a known nonlinearity is
            defined before it (a merge would then not be exact).
    """
    for name, m in module.named_modules():
        if isinstance(m, _SYN):
            return m
        if name and not list(m.children()) and (list(m.parameters(recurse=False))
                                                 or isinstance(m, (nn.ReLU, nn.Tanh))):
            raise ConfigError(
                f"WIN: {type(m).__name__} ({name!r}) comes before the first linear/conv layer "
                f"of {type(module).__name__}; a channel map cannot be merged through it — "
                "start every block with a linear or convolution layer")
    raise ConfigError(f"WIN: {type(module).__name__} has no linear or convolution layer")


@torch.no_grad()
def merge_channel_map(layer: nn.Module, M: Tensor) -> None:
    """Make ``layer(h)`` compute ``layer(M h)`` (``M`` ``[in, in']`` on the channel axis)."""
    if isinstance(layer, nn.Linear):
        layer.weight.copy_(layer.weight @ M)
        layer.in_features = M.shape[1]
    elif isinstance(layer, _SYN):
        if layer.groups != 1:
            raise ConfigError(f"WIN: cannot merge into grouped convolution {layer}")
        layer.weight.copy_(torch.einsum("oi...,ij->oj...", layer.weight, M))
        layer.in_channels = M.shape[1]
    else:
        raise ConfigError(f"WIN: cannot merge a channel map into {type(layer).__name__}")


def _replace_weight(layer: nn.Module, M: Tensor) -> None:
    """:func:`merge_channel_map` where ``M`` changes the input width (new parameter)."""
    with torch.no_grad():
        if isinstance(layer, nn.Linear):
            w = layer.weight @ M
        else:
            w = torch.einsum("oi...,ij->oj...", layer.weight, M)
    layer.weight = nn.Parameter(w)
    if isinstance(layer, nn.Linear):
        layer.in_features = M.shape[1]
    else:
        layer.in_channels = M.shape[1]


def train_task(model: nn.Module, batches: Callable[[], Iterable[tuple[Tensor, Tensor]]],
               epochs: int, *, lr: float = 1e-3,
               loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy) -> None:
    """Adam on the task loss for ``epochs`` passes over ``batches()``."""
    if epochs <= 0:
        return
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(epochs):
        for x, y in batches():
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()


@dataclass
class WideThenNarrow:
    """The WIN recipe (module docstring).

    Args:
        make_net: ``width -> BlockNet``; called with ``width`` and ``width * factor``.
        width: hidden width ``w`` of the thin net.
        factor: widening factor of the wide net (4, [RECON]).
        channel_dim: channel axis of the block outputs.
        teacher_forcing: feed ``V_i(h^wide_{i−1})`` instead of the thin prefix in stage 2.
        lr: Adam learning rate of all stages.
        rate_dim: ``None`` (default): MSE between the block outputs element by element; an
            axis (0 for time-major spiking nets): MSE between their means over that axis,
            i.e. between firing rates — a [RECON] option for SNNs, whose exact spike maps a
            thin block cannot copy, while a rate-coded head only reads the rates.
    """

    make_net: Callable[[int], BlockNet]
    width: int
    factor: int = 4
    channel_dim: int = -1
    teacher_forcing: bool = False
    lr: float = 1e-3
    rate_dim: int | None = None
    wide: BlockNet | None = None
    thin: BlockNet | None = None
    U: nn.ModuleList = field(default_factory=nn.ModuleList)
    V: nn.ModuleList = field(default_factory=nn.ModuleList)
    history: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.width < 1 or self.factor < 1:
            raise ConfigError(f"WIN: width and factor must be >= 1, got {self.width}, "
                              f"{self.factor}")

    # ---- stage 2 ------------------------------------------------------------------------
    def prepare(self, wide: BlockNet) -> None:
        """Build the thin net and the channel maps next to a (trained) wide net."""
        self.wide = wide
        self.thin = self.make_net(self.width)
        if len(self.thin.blocks) != len(wide.blocks):
            raise ConfigError("WIN: the thin and wide nets must have the same number of blocks")
        W, w, d = self.width * self.factor, self.width, self.channel_dim
        self.U = nn.ModuleList(ChannelMap(w, W, d) for _ in range(len(wide.blocks) + 1))
        self.V = nn.ModuleList(ChannelMap(W, w, d) for _ in range(len(wide.blocks)))
        ref = next(self.thin.parameters())
        self.U.to(ref)
        self.V.to(ref)
        for b in self.thin.blocks:
            first_synapse(b)

    def _check_prepared(self) -> None:
        if self.wide is None or self.thin is None:
            raise ConfigError("WIN: call prepare(wide) (or fit) before imitate/merge")

    def _stages(self, net: BlockNet) -> list[nn.Module]:
        return [net.stem, *net.blocks]

    def _lifted(self, x: Tensor, j: int) -> Tensor:
        """``U_j S_j(z_{j−1})``: thin stage ``j``'s output lifted to the wide width."""
        stages = self._stages(self.thin)
        h = self.U[0](stages[0](x))
        for k in range(1, j + 1):
            h = self.U[k](stages[k](self.V[k - 1](h)))
        return h

    def thin_prefix(self, x: Tensor, i: int) -> Tensor:
        """Input ``z_{i−1}`` of thin stage ``i`` in the augmented net (``x`` for the stem)."""
        return x if i == 0 else self.V[i - 1](self._lifted(x, i - 1))

    def imitation_loss(self, x: Tensor, i: int) -> Tensor:
        """``MSE(U_i S_i(z_{i−1}), h^wide_i)`` (mean over all elements); the prefix is frozen,
        ``V_i`` (in ``z_{i−1}``), ``S_i`` and ``U_i`` get gradients."""
        with torch.no_grad():
            prev = h = x
            for s in self._stages(self.wide)[: i + 1]:
                prev, h = h, s(h)
            a = None if i == 0 else (prev if self.teacher_forcing else self._lifted(x, i - 1))
        z = x if a is None else self.V[i - 1](a)
        out = self.U[i](self._stages(self.thin)[i](z))
        if self.rate_dim is not None:
            out, h = out.mean(self.rate_dim), h.mean(self.rate_dim)
        return F.mse_loss(out, h)

    def imitate(self, batches: Callable[[], Iterable[tuple[Tensor, Tensor]]],
                epochs_per_block: int) -> list[float]:
        """Stage 2: bottom-to-top imitation; returns the last epoch's mean loss per stage."""
        self._check_prepared()
        self.wide.eval()
        losses = []
        for i, stage in enumerate(self._stages(self.thin)):
            params = [*stage.parameters(), *self.U[i].parameters()]
            if i > 0:
                params += list(self.V[i - 1].parameters())
            opt = torch.optim.Adam(params, lr=self.lr)
            self.thin.train()
            mean = math.nan
            for _ in range(epochs_per_block):
                tot = n = 0.0
                for x, _y in batches():
                    loss = self.imitation_loss(x, i)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    tot, n = tot + float(loss.detach()), n + 1
                mean = tot / max(n, 1)
            losses.append(mean)
        self.history["imitation"] = losses
        return losses

    # ---- stage 3 ------------------------------------------------------------------------
    def augmented_forward(self, x: Tensor) -> Tensor:
        """The thin net with the channel maps in place and the wide head: ``S̄(x)``."""
        out = self.wide.head(self._lifted(x, len(self.thin.blocks)))
        return out if self.wide.readout is None else self.wide.readout(out)

    def merge(self) -> BlockNet:
        """Merge ``V_i U_{i−1}`` into block ``i`` and ``U_K`` into the (wide) head; drop U, V."""
        self._check_prepared()
        with torch.no_grad():
            for i, b in enumerate(self.thin.blocks):
                merge_channel_map(first_synapse(b), self.V[i].weight @ self.U[i].weight)
            head = copy.deepcopy(self.wide.head)
            _replace_weight(first_synapse(head), self.U[-1].weight.detach())
        self.thin.head = head
        merged, self.U, self.V = self.thin, nn.ModuleList(), nn.ModuleList()
        return merged

    def fit(self, batches: Callable[[], Iterable[tuple[Tensor, Tensor]]], *, epochs_wide: int,
            epochs_per_block: int, epochs_finetune: int,
            loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy) -> BlockNet:
        """All stages; returns the merged, fine-tuned thin net."""
        wide = self.make_net(self.width * self.factor)
        train_task(wide, batches, epochs_wide, lr=self.lr, loss_fn=loss_fn)
        self.prepare(wide)
        self.imitate(batches, epochs_per_block)
        thin = self.merge()
        train_task(thin, batches, epochs_finetune, lr=self.lr, loss_fn=loss_fn)
        return thin
