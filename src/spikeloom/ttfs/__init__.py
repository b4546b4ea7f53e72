"""Time-to-first-spike (TTFS) networks with exact ReLU equivalence (Stanojevic et al. 2024).

* :class:`TTFSLinear`: closed-form spike times, identity-mapping parameterisation (or the
  ``"free"`` slope for comparison), registered with the cost report (input spikes × fan-out);
* :class:`TTFSNet`: input coding ``t = 1 − x``, consecutive windows that grow during training
  (:meth:`TTFSNet.grow_windows`), :meth:`TTFSNet.trace` with spike times, spikes per neuron and
  the count of neurons that would fire before their window;
* :func:`relu_to_ttfs`: ReLU MLP (BatchNorm folded) → equivalent TTFS network.
"""

from .convert import linear_stack, relu_to_ttfs
from .layers import Slope, TTFSLinear
from .network import TTFSNet, TTFSTrace, encode_ttfs

__all__ = [
    "Slope",
    "TTFSLinear",
    "TTFSNet",
    "TTFSTrace",
    "encode_ttfs",
    "linear_stack",
    "relu_to_ttfs",
]
