"""Training with backpropagation through time (BPTT / STBP), run directories and resuming.

=====================  ===================================================================
module                 concept
=====================  ===================================================================
:mod:`.config`         :class:`TrainConfig` (the YAML keys, with CLI option metadata)
:mod:`.build`          device, seeds, datasets, model (from the dataset's ``DataSpec``),
                       optimizer, schedule
:mod:`.distributed`    ``torchrun`` process info, global batches, per-rank loaders
:mod:`.steps`          the step protocol per data kind (:data:`STEPS`)
:mod:`.loop`           one training epoch, one evaluation pass
:mod:`.callbacks`      :class:`Callback` (``after_backward``, ``after_step``, ``epoch_end``)
:mod:`.checkpoint`     atomic checkpoints, resume state, RNG state
:mod:`.losses`         rate-coded CE, per-step CE, MSE
:mod:`.plots`          learning curves, firing rates, raster
:mod:`.run`            :func:`train`, :func:`load_run` (the orchestrator)
=====================  ===================================================================
"""

from ..datasets.collate import collate
from ..errors import ConfigError, TrainingError
from ..monitor import SpikeMonitor
from .callbacks import Callback, StepContext
from .checkpoint import atomic_torch_save
from .config import TrainConfig
from .distributed import DistInfo, global_batches, make_loader
from .loop import EpochSums, evaluate
from .losses import LOSSES, compute_loss
from .run import TrainResult, cost_report, load_run, train
from .steps import STEPS, StepOutput, classification_step

__all__ = [
    "TrainConfig", "ConfigError", "TrainingError", "train", "TrainResult", "evaluate",
    "load_run", "cost_report", "collate", "compute_loss", "LOSSES", "Callback", "StepContext",
    "STEPS", "StepOutput", "classification_step", "EpochSums", "DistInfo", "global_batches",
    "make_loader", "atomic_torch_save", "firing_rates",
]


def firing_rates(model, x):
    """Per-layer spikes per neuron per step of ``model`` on the batch ``x`` ``[T, B, ...]``
    (one forward pass under a :class:`~spikeloom.monitor.SpikeMonitor`)."""
    import torch

    with torch.no_grad(), SpikeMonitor(model) as mon:
        model(x)
    return mon.rates()
