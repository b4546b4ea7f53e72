"""Tensorized layers: tensor-train (TT) and hierarchical Tucker (HT) linear/conv layers, their
decomposition from trained dense layers and the hybrid strategy (spec A4); KCP (spec A5)."""

from __future__ import annotations

from .decompose import ht_svd, load_dense, tt_svd
from .ht import HTMatrix
from .hybrid import STRATEGIES, tensorize
from .kcp import KCPLinear, KCPLSTMCell, KCPRNNCell, kcp_from_dense, kcp_model
from .layers import HTConv2d, HTLinear, TensorConv2d, TensorLinear, TTConv2d, TTLinear
from .tt import TTMatrix

__all__ = ["HTConv2d", "HTLinear", "HTMatrix", "KCPLSTMCell", "KCPLinear", "KCPRNNCell",
           "STRATEGIES", "TTConv2d", "TTLinear", "TTMatrix", "TensorConv2d", "TensorLinear",
           "ht_svd", "kcp_from_dense", "kcp_model", "load_dense", "tensorize", "tt_svd"]
