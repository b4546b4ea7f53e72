"""Spiking graph networks with spatial-temporal feature normalisation (STFN).

Xu, Wu, Deng, Liu, Li, Pei, "Exploiting spiking dynamics with spatial-temporal feature
normalization in graph learning", IJCAI 2021 (arXiv:2107.06865). Node features become spike
trains over ``T`` steps, each layer aggregates them over the graph (GCN or GAT), normalises the
membrane input per node over (feature, time) with :class:`STFN` and feeds LIF neurons; the
readout averages the last layer's spikes over time and applies a linear classifier.

Choices the paper leaves open are named options:

* ``affine`` of :class:`STFN`: ``"feature"`` (default) — trainable ``λ, γ`` per feature,
  shared by all nodes (so the model also applies to nodes unseen in training); ``"none"``.
  The paper writes ``λ^{k,v}`` (per feature and node); per-node parameters would tie the
  model to one graph, so they are not offered.
* ``causal``: statistics over the steps seen so far (online; the re-implementation
  SGNNBench recomputes them at every step) or over all ``T`` steps (static graphs).
* ``encoding`` of the input: ``"repeat"`` (binary bag-of-words features presented at every
  step, as in the paper) or ``"bernoulli"`` (a spike with probability = feature value, for
  real-valued features such as Pubmed's TF-IDF; [unverified] in the spec).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..neurons import LIF
from ..walk import register_role
from .layers import GATConv, GCNConv
from .norm import Adj

__all__ = ["STFN", "SpikingGraphNet", "encode_nodes"]


class STFN(nn.Module):
    """Per-node normalisation over (feature, time) of a membrane input ``S [T, N, C]``.

    ``Y = λ · ρ·V_th · (S - E_v) / sqrt(Var_v + ε) + γ`` with ``E_v, Var_v`` the mean and
    (biased) variance of node ``v``'s inputs over features and time steps ``1..T`` (or
    ``1..t`` at step ``t`` when ``causal``).

    Args:
        num_features: ``C``.
        v_th: the neurons' threshold.
        rho: scale hyperparameter ``ρ`` (1 in the re-implementation).
        eps: added to the variance.
        causal: online statistics (see the module docstring).
        affine: ``"feature"`` or ``"none"``.
    """

    def __init__(self, num_features: int, v_th: float = 0.5, rho: float = 1.0,
                 eps: float = 1e-5, causal: bool = False, affine: str = "feature") -> None:
        super().__init__()
        if affine not in ("feature", "none"):
            raise ValueError(f"STFN affine must be 'feature' or 'none', got {affine!r}")
        self.v_th, self.rho, self.eps, self.causal = v_th, rho, eps, causal
        self.weight = nn.Parameter(torch.ones(num_features)) if affine == "feature" else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine == "feature" else None

    def forward(self, s: Tensor) -> Tensor:
        if s.ndim != 3:
            raise ValueError(f"STFN expects [T, N, C], got shape {tuple(s.shape)}")
        T, _, C = s.shape
        if self.causal:
            steps = torch.arange(1, T + 1, device=s.device, dtype=s.dtype).view(T, 1, 1) * C
            mean = s.sum(-1, keepdim=True).cumsum(0) / steps
            var = ((s * s).sum(-1, keepdim=True).cumsum(0) / steps - mean * mean).clamp_min(0)
            d = s - mean
        else:  # two passes, reducing the contiguous feature axis first (faster than over (0, 2))
            mean = s.mean(-1, keepdim=True).mean(0, keepdim=True)
            d = s - mean
            var = (d * d).mean(-1, keepdim=True).mean(0, keepdim=True)
        y = (self.rho * self.v_th) * d * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight + self.bias
        return y

    def extra_repr(self) -> str:
        return f"rho={self.rho}, v_th={self.v_th}, causal={self.causal}"


register_role(STFN, "norm")


def encode_nodes(x: Tensor, T: int, encoding: str, training: bool) -> Tensor:
    """Node features ``[N, F]`` as a spike train ``[T, N, F]`` (``"repeat"`` or ``"bernoulli"``).

    ``"bernoulli"`` draws from torch's global generator (seeded by the trainer).
    """
    if x.ndim == 3:  # already time-major
        return x
    if encoding == "repeat":
        return x.unsqueeze(0).expand(T, *x.shape)
    if encoding == "bernoulli":
        return torch.bernoulli(x.clamp(0, 1).unsqueeze(0).expand(T, *x.shape))
    raise ValueError(f"encoding must be 'repeat' or 'bernoulli', got {encoding!r}")


def _mlp(width: int, num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes))


#: readout name -> constructor ``(width, num_classes)`` of the classifier over mean spikes
_READOUTS = {"linear": nn.Linear, "mlp": _mlp}


class SpikingGraphNet(nn.Module):
    """GC-SNN / GA-SNN: spiking graph convolutions with STFN and LIF neurons, rate readout.

    Args:
        in_features, num_classes: sizes.
        conv: ``"gcn"`` or ``"gat"``.
        hidden: hidden size (per head for ``gat``).
        layers: spiking graph layers.
        heads: attention heads (``gat``; concatenated).
        T: time steps.
        v_th, decay: LIF threshold and leak ``k`` (``V[t] = k·V[t-1]·(1-H[t-1]) + I[t]``).
        rho, causal, stfn: STFN settings; ``stfn=False`` feeds the aggregation directly.
        dropout: on the inputs of the hidden layers (the spikes; training only).
        input_dropout: on the node features entering the first layer; ``None``: ``dropout``.
        reset: the neurons' reset, ``"hard"`` (to 0) or ``"soft"`` (subtract ``V_th``).
        readout: classifier over the time-averaged spikes: ``"linear"`` or ``"mlp"`` (one
            hidden ReLU layer of the last layer's width, spec §8 allows either).
        encoding: see :func:`encode_nodes`.
        surrogate, surrogate_width, detach_reset: the LIF neurons' surrogate gradient (a name
            of :data:`spikeloom.surrogate.SURROGATES`), its width (``None``: the surrogate's
            default) and whether the reset is detached from the graph in backward.
        wd_scope: the parameters :meth:`weight_decay_groups` decays: ``"all"`` or ``"first"``
            (the first graph convolution only, as Kipf & Welling's GCN).
    """

    adj_norm = "gcn"

    def __init__(self, in_features: int, num_classes: int, conv: str = "gcn", hidden: int = 64,
                 layers: int = 1, heads: int = 4, T: int = 8, v_th: float = 0.5,
                 decay: float = 0.5, rho: float = 1.0, causal: bool = False, stfn: bool = True,
                 dropout: float = 0.5, input_dropout: float | None = None,
                 reset: str = "hard", readout: str = "linear",
                 encoding: str = "repeat", wd_scope: str = "all",
                 surrogate: str = "rectangular", surrogate_width: float | None = None,
                 detach_reset: bool = False) -> None:
        super().__init__()
        if conv not in ("gcn", "gat"):
            raise ValueError(f"conv must be 'gcn' or 'gat', got {conv!r}")
        if readout not in _READOUTS:
            raise ValueError(f"readout must be one of {sorted(_READOUTS)}, got {readout!r}")
        if wd_scope not in ("all", "first"):
            raise ValueError(f"wd_scope must be 'all' or 'first', got {wd_scope!r}")
        self.T, self.dropout, self.encoding, self.wd_scope = T, dropout, encoding, wd_scope
        self.input_dropout = dropout if input_dropout is None else input_dropout
        self.convs, self.norms, self.neurons = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        width = in_features
        for _ in range(layers):
            if conv == "gcn":
                self.convs.append(GCNConv(width, hidden))
                out = hidden
            else:
                self.convs.append(GATConv(width, hidden, heads=heads))
                out = hidden * heads
            self.norms.append(STFN(out, v_th, rho, causal=causal) if stfn else nn.Identity())
            self.neurons.append(LIF(v_th=v_th, decay=decay, reset=reset, surrogate=surrogate,
                                    width=surrogate_width, detach_reset=detach_reset))
            width = out
        self.head = _READOUTS[readout](width, num_classes)

    def weight_decay_groups(self, weight_decay: float) -> list[dict]:
        """Optimiser parameter groups with ``weight_decay`` applied as ``wd_scope`` says."""
        if self.wd_scope == "all":
            return [{"params": list(self.parameters()), "weight_decay": weight_decay}]
        first = {id(p) for p in self.convs[0].parameters()}
        return [{"params": [p for p in self.parameters() if id(p) in first],
                 "weight_decay": weight_decay},
                {"params": [p for p in self.parameters() if id(p) not in first],
                 "weight_decay": 0.0}]

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        """Logits ``[N, K]`` of node features ``x [N, F]`` (or a spike train ``[T, N, F]``)."""
        # "repeat": the input is the same at every step, so the first layer's synaptic input
        # is computed once and repeated (identical values; dropout masks the input once)
        h = x if (x.ndim == 2 and self.encoding == "repeat") else \
            encode_nodes(x, self.T, self.encoding, self.training)
        for i, (conv, norm, neuron) in enumerate(zip(self.convs, self.norms, self.neurons)):
            p = self.input_dropout if i == 0 else self.dropout
            s = conv(F.dropout(h, p, self.training), adj)
            if s.ndim == 2:  # the same input at every step: STFN's statistics over (feature,
                # time) equal those over features, so normalise one step and repeat it
                h = neuron(norm(s.unsqueeze(0)).expand(self.T, *s.shape))
            else:
                h = neuron(norm(s))
        return self.head(h.mean(0))
