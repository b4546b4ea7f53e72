"""Joint A-SNN: an ANN and an SNN trained together (Guo et al., Pattern Recognition 2023,
arXiv:2305.02099).

The two networks share every convolution through an SVD factorisation: each conv weight
``(c_out, c_in, k, k)`` is viewed as ``k·k`` matrices ``c_out × c_in``, ``M = U·diag(σ)·Vᵀ``;
the two networks share ``U`` and ``V`` and own separate singular values ``σ_ANN``, ``σ_SNN``
(both initialised to ``σ``). FC layers have separate weights and a shared bias; every BN is
separate; the ANN uses ReLU where the SNN has LIF neurons. Branch exits after every stage but
the last (``1×1 conv -> C/4``, ``k×k`` conv with stride ``k``, ``1×1 conv -> C_last``, each with
BN and activation; global average pool; FC) give four exits per network on a 4-stage ResNet,
and the pooled features of each exit. The loss (spec §7)::

    L = (1-α)·Σ_exits [CE(ann_e) + CE(snn_e)] + α·KD_all
        + β·Σ_features Σ (f_snn - f_ann)²·1[f_snn > 0 or f_ann > 0]

with ``KD(z, p) = -mean_batch Σ_c p_c log_softmax(z/τ)_c · τ²`` from the ANN's final exit to
its branches, from each ANN branch to the matching SNN branch and from the ANN final exit to the
SNN final exit. Inference runs the SNN only (``model(x)``); :func:`export_snn` returns it as an
ordinary :class:`~spikeloom.models.SpikingResNet`.

Differences from the reference code (named, documented choices):

* SNN BatchNorm statistics span time and batch (spikeloom's ``norm="bn"``) instead of one
  BatchNorm2d applied at each step separately; both use running statistics at inference, where
  they are identical.
* ``model(x)`` returns the *mean* over time of the SNN logits (spikeloom's readout, same
  argmax); the loss uses their *sum* over time, as the reference.
* The ANN sees the time-average of the input (the image itself for direct/repeated encoding).
* The reference rebuilds weights with a permute that scrambles the initial weights; we
  rebuild them exactly (``U·diag(σ)·Vᵀ`` equals the initial weight).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import TimeDistributed
from ..models.base import SpikingClassifier
from ..models.factory import make_norm
from ..models.registry import frames_args, register_model
from ..models.resnet import SpikingResNet
from ..train.steps import StepOutput
from ..walk import role_of
from .registry import TrainingMethod, register_method

__all__ = ["SVDFactors", "SharedSVDConv2d", "JointASNN", "joint_loss", "export_snn",
           "share_convs", "joint_resnet18"]


class SVDFactors(nn.Module):
    """The shared singular vectors of one conv weight: ``U [k,k,c_out,r]``, ``Vh [k,k,r,c_in]``."""

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        m = weight.detach().permute(2, 3, 0, 1)  # [k, k, c_out, c_in]
        u, s, vh = torch.linalg.svd(m, full_matrices=False)
        self.U = nn.Parameter(u.contiguous())
        self.Vh = nn.Parameter(vh.contiguous())
        self.register_buffer("sigma0", s.contiguous(), persistent=False)

    def compose(self, sigma: Tensor) -> Tensor:
        """``U·diag(σ)·Vh`` as a conv weight ``[c_out, c_in, k, k]``."""
        return ((self.U * sigma.unsqueeze(-2)) @ self.Vh).permute(2, 3, 0, 1)


class SharedSVDConv2d(nn.Conv2d):
    """A ``Conv2d`` whose weight is ``factors.compose(sigma)``: shared singular vectors, its own
    singular values. Counted as an ordinary Conv2d by the cost model."""

    def __init__(self, conv: nn.Conv2d, factors: SVDFactors) -> None:
        if conv.groups != 1:
            raise ConfigError(f"Joint A-SNN shares ordinary convolutions only (groups=1), got "
                              f"groups={conv.groups}")
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                         conv.padding, conv.dilation, 1, conv.bias is not None,
                         conv.padding_mode)
        del self.weight  # the weight is computed from the factors
        self.factors = factors
        self.sigma = nn.Parameter(factors.sigma0.clone())
        if conv.bias is not None:
            self.bias = nn.Parameter(conv.bias.detach().clone())

    @property
    def weight(self) -> Tensor:  # type: ignore[override]
        p = self._parameters.get("weight")
        if p is not None:  # only during nn.Conv2d.__init__
            return p
        return self.factors.compose(self.sigma)


def _convs(module: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(n, m) for n, m in module.named_modules() if type(m) is nn.Conv2d]


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    if attr.isdigit():
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)


def share_convs(snn: nn.Module, ann: nn.Module) -> int:
    """Replace the matching ``Conv2d`` layers of two structurally equal modules by
    :class:`SharedSVDConv2d` pairs factorised from the SNN's weights; returns how many."""
    a, s = _convs(ann), _convs(snn)
    if [n for n, _ in a] != [n for n, _ in s]:
        raise ConfigError("Joint A-SNN: the ANN and SNN trees differ; cannot share convs")
    for (name, cs), (_, ca) in zip(s, a):
        factors = SVDFactors(cs.weight)
        new_s, new_a = SharedSVDConv2d(cs, factors), SharedSVDConv2d(ca, factors)
        if cs.bias is not None:
            new_a.bias = new_s.bias
        _replace(snn, name, new_s)
        _replace(ann, name, new_a)
    return len(s)


def _to_ann(snn: nn.Module) -> nn.Module:
    """A deep copy of ``snn`` with every neuron layer replaced by ReLU."""
    ann = copy.deepcopy(snn)
    for name, m in list(ann.named_modules()):
        if role_of(m) == "neuron":
            _replace(ann, name, nn.ReLU())
    return ann


def _stage_ends(net: SpikingResNet) -> list[int]:
    """Index of the last block of each stage (a stage starts with a projection shortcut)."""
    blocks = list(net.layers)
    return [i for i in range(len(blocks))
            if i == len(blocks) - 1 or not isinstance(blocks[i + 1].shortcut, nn.Identity)]


def _out_channels(block: nn.Module) -> int:
    """Output channels of a basic (``conv2``) or bottleneck (``conv3``) block."""
    last = block.conv3 if hasattr(block, "conv3") else block.conv2
    return int(last.module.out_channels)


class _Branch(nn.Module):
    """``1×1 conv (C/4) -> k×k conv stride k -> 1×1 conv (C_last)``, each with BN and the
    activation, then global average pool; returns the pooled feature ``[T, B, C_last]``."""

    def __init__(self, c: int, c_last: int, k: int, make: Any) -> None:
        super().__init__()
        mid = max(1, c // 4)
        layers: list[nn.Module] = []
        for c_in, c_out, ks in ((c, mid, 1), (mid, mid, k), (mid, c_last, 1)):
            layers += [TimeDistributed(nn.Conv2d(c_in, c_out, ks, stride=ks, bias=False)),
                       make_norm("bn", c_out, 1.0), make()]
        layers.append(TimeDistributed(nn.AdaptiveAvgPool2d(1)))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).flatten(2)


class JointASNN(SpikingClassifier):
    """An SNN (:class:`SpikingResNet`) and its ANN twin with shared SVD-factorised convs,
    separate BN, separate FC weights with a shared bias, and branch exits.

    ``model(x)`` is the SNN's inference output (mean over time of its logits);
    :meth:`joint_forward` gives every exit and feature of both networks for the loss.

    Args:
        snn: the spiking ResNet (any layout; it is taken over, not copied).
        branches: add the branch exits (``k = 2^(S-1-i)`` for the exit after stage ``i``).
    """

    def __init__(self, snn: SpikingResNet, branches: bool = True) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.T = snn.in_channels, snn.num_classes, snn.T
        self.snn = snn
        self.ends = _stage_ends(snn)
        blocks = list(snn.layers)
        widths = [_out_channels(blocks[i]) for i in self.ends]
        n = len(self.ends)
        neuron = next(m for m in snn.modules() if role_of(m) == "neuron")
        make = lambda: copy.deepcopy(neuron)  # noqa: E731  (same neuron settings)
        self.snn_branches = nn.ModuleList(
            [_Branch(widths[i], widths[-1], 2 ** (n - 1 - i), make) for i in range(n - 1)]
            if branches else [])
        self.snn_heads = nn.ModuleList([nn.Linear(widths[-1], snn.num_classes)
                                        for _ in self.snn_branches])
        self.ann = _to_ann(snn)
        self.ann_branches = _to_ann(self.snn_branches)
        self.ann_heads = copy.deepcopy(self.snn_heads)
        share_convs(self.snn, self.ann)
        share_convs(self.snn_branches, self.ann_branches)
        for fs, fa in ((self.snn.classifier[-1], self.ann.classifier[-1]),
                       *zip(self.snn_heads, self.ann_heads)):
            fa.bias = fs.bias  # FC: separate weights, shared bias
        # one readout, walked last: the SNN's moves to the joint model (restored on export)
        readout = snn.readout
        snn.readout = nn.Identity()
        self.ann.readout = nn.Identity()
        self.readout = readout

    def _per_step(self, x: Tensor) -> Tensor:
        return self.snn._per_step(x)

    def _path(self, net: SpikingResNet, branches: nn.ModuleList, heads: nn.ModuleList,
              x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Per-step logits and pooled features of every exit (branches first, final last)."""
        y = net.stem(x)
        logits, feats = [], []
        for i, block in enumerate(net.layers):
            y = block(y)
            if i in self.ends[:-1] and len(branches):
                k = self.ends.index(i)
                f = branches[k](y)
                feats.append(f)
                logits.append(heads[k](f))
        f = net.pool(y).flatten(2)
        feats.append(f)
        logits.append(net.classifier(f))
        return logits, feats

    def joint_forward(self, x: Tensor) -> dict[str, list[Tensor]]:
        """Exits of both networks: ``{"snn_logits", "snn_feats"}`` summed over time,
        ``{"ann_logits", "ann_feats"}`` of one ANN pass on the time-averaged input; each a list
        (branches in stage order, final exit last)."""
        x = self._prepare(x)
        sl, sf = self._path(self.snn, self.snn_branches, self.snn_heads, x)
        al, af = self._path(self.ann, self.ann_branches, self.ann_heads,
                            x.mean(0, keepdim=True))
        return {"snn_logits": [z.sum(0) for z in sl], "snn_feats": [f.sum(0) for f in sf],
                "ann_logits": [z[0] for z in al], "ann_feats": [f[0] for f in af]}


def _kd(z: Tensor, p: Tensor, tau: float) -> Tensor:
    """``-Σ_batch Σ_c p_c log_softmax(z/τ)_c τ²`` (summed over the batch)."""
    return -(p * F.log_softmax(z / tau, -1)).sum() * tau * tau


def joint_loss(out: dict[str, list[Tensor]], y: Tensor, alpha: float = 0.1, beta: float = 1e-6,
               tau: float = 3.0) -> Tensor:
    """The Joint A-SNN loss *summed over the batch* (``B ×`` the reference's mean-reduced loss;
    the trainer divides by the batch size).

    Args:
        out: :meth:`JointASNN.joint_forward`'s dict.
        y: labels ``[B]``.
        alpha, beta, tau: KD weight, feature-loss weight, distillation temperature.
    """
    B = y.shape[0]
    sl, al = out["snn_logits"], out["ann_logits"]
    ce = sum(F.cross_entropy(a, y, reduction="sum") + F.cross_entropy(s, y, reduction="sum")
             for a, s in zip(al, sl))
    loss = (1 - alpha) * ce
    if alpha:
        q = lambda z: F.softmax(z.detach() / tau, -1)  # noqa: E731
        kd = sum(_kd(a, q(al[-1]), tau) for a in al[:-1])
        kd = kd + sum(_kd(s, q(a), tau) for s, a in zip(sl[:-1], al[:-1]))
        kd = kd + _kd(sl[-1], q(al[-1]), tau)
        loss = loss + alpha * kd
    if beta:
        feat = sum((((fs - fa) ** 2) * ((fs > 0) | (fa > 0)).to(fs.dtype)).sum()
                   for fs, fa in zip(out["snn_feats"], out["ann_feats"]))
        loss = loss + beta * B * feat
    return loss


def export_snn(model: JointASNN) -> SpikingResNet:
    """The SNN alone as an ordinary :class:`SpikingResNet` (plain ``Conv2d`` weights
    ``U·diag(σ_SNN)·Vᵀ``, the SNN's BN and FC), giving the same outputs as ``model(x)``."""
    if not isinstance(model, JointASNN):
        raise TypeError(f"export_snn takes a JointASNN, got {type(model).__name__}")
    snn = copy.deepcopy(model.snn)
    snn.readout = copy.deepcopy(model.readout)
    for name, m in list(snn.named_modules()):
        if isinstance(m, SharedSVDConv2d):
            conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                             m.dilation, 1, m.bias is not None, m.padding_mode)
            with torch.no_grad():
                conv.weight.copy_(m.weight)
                if m.bias is not None:
                    conv.bias.copy_(m.bias)
            _replace(snn, name, conv.to(m.sigma.device))
    return snn


def _joint_step(options: dict[str, Any]):
    def step(model: nn.Module, batch: Any, loss: str, device: torch.device) -> StepOutput:
        net = getattr(model, "module", model)  # DDP-wrapped
        x, y = batch
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = net.joint_forward(x)
        total = joint_loss(out, y, options["alpha"], options["beta"], options["tau"])
        correct = (out["snn_logits"][-1].argmax(-1) == y).sum()
        return StepOutput(total, correct, len(y))

    return step


def _prepare(model: nn.Module, options: dict[str, Any]) -> nn.Module:
    if isinstance(model, JointASNN):
        return model
    if not isinstance(model, SpikingResNet):
        raise ConfigError(
            f"--method joint-asnn needs a spiking ResNet (models spiking_resnet, resnet19, "
            f"resnet_tiny, joint_resnet18, ...), got {type(model).__name__}")
    return JointASNN(model, branches=options["branches"])


@register_model("joint_resnet18", kinds=("frames",), from_spec=frames_args)
def joint_resnet18(in_channels: int = 3, num_classes: int = 10, **kwargs: Any) -> JointASNN:
    """Joint A-SNN's CIFAR ResNet-18 (stem 3×3 64, stages 64-128-256-512 × 2 blocks, no
    max-pool, plain BN, LIF ``V_th = 0.5``, decay 0.25, ``>=``) with its ANN twin and branch
    exits."""
    kwargs.setdefault("neuron_kwargs", {"fire_ge": True})
    for k, v in (("block_layout", (2, 2, 2, 2)), ("widths", (64, 128, 256, 512)), ("stem", 64),
                 ("fc_hidden", None), ("norm", "bn")):
        kwargs.setdefault(k, v)
    branches = kwargs.pop("branches", True)
    snn = SpikingResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)
    return JointASNN(snn, branches=branches)


register_method(TrainingMethod(
    "joint_asnn", "Joint A-SNN: ANN and SNN with shared SVD-factorised convs, branch exits, "
                  "self-distillation and feature loss; inference through the SNN",
    prepare=_prepare, make_step=_joint_step,
    options={"alpha": 0.1, "beta": 1e-6, "tau": 3.0, "branches": True}),
    aliases=("joint",))
