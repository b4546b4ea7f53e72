"""Accuracy of an integer program and its agreement with the torch model, batch by batch."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from .executor import run_program
from .lowering import lower, spike_outputs
from .twin import frozen_twin

__all__ = ["integer_eval"]


def integer_eval(model: nn.Module, batches: Iterable[Any], program=None) -> dict[str, Any]:
    """Run the lowered ``model`` on ``batches`` of ``(x [T, B, ...], y)`` with the executor.

    Returns:
        ``{"acc", "torch_acc", "agreement", "pred_agreement", "n", "samples_per_s"}``:
        executor accuracy, the fake-quant torch model's accuracy, the fraction of samples whose
        every neuron output (spikes, LIAF activations) equals the frozen torch twin's, the
        fraction with the same prediction as the fake-quant model, and the executor's
        throughput.
    """
    model.eval()
    twin = None
    n = correct = torch_correct = same = same_pred = 0
    seconds = 0.0
    for x, y, *_ in batches:
        if program is None:
            program = lower(model, x)
        if twin is None:
            twin = frozen_twin(model, program)
        t0 = time.perf_counter()
        res = run_program(program, x.numpy())
        seconds += time.perf_counter() - t0
        _, tw_spikes = spike_outputs(twin, x.double())
        with torch.no_grad():
            fq_pred = model(x).argmax(1).numpy()
        ok = np.ones(x.shape[1], bool)
        outs = {**res["spikes"], **res["analog"]}
        for name, s in tw_spikes.items():
            diff = s.numpy().astype(np.int64) != outs[name].astype(np.int64)
            ok &= ~diff.reshape(diff.shape[0], diff.shape[1], -1).any(axis=(0, 2))
        yv = np.asarray(y)
        n += len(yv)
        correct += int((res["pred"] == yv).sum())
        torch_correct += int((fq_pred == yv).sum())
        same += int(ok.sum())
        same_pred += int((fq_pred == res["pred"]).sum())
    return {"acc": correct / n, "torch_acc": torch_correct / n, "agreement": same / n,
            "pred_agreement": same_pred / n, "n": n, "samples_per_s": n / max(seconds, 1e-9),
            "program": program}
