"""Every YAML in configs/ loads, builds its model (with its training method) and takes one
optimiser step on synthetic data of the declared shape.

The shape comes from the config's ``paper.data_spec`` (datasets that are not here) or from the
dataset itself (when its files are). ``T``, channels and classes are the declared ones; the
spatial size is reduced to at most 16 (32 where the network pools more) to keep the test fast —
every model here ends in a global/adaptive pool or sizes its FC from the spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikeloom.datasets.spec import DataSpec
from spikeloom.errors import MissingDataError
from spikeloom.methods import METHODS
from spikeloom.train.build import build_model_for, make_optimizer
from spikeloom.train.config import TrainConfig
from spikeloom.train.steps import STEPS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def _declared(cfg: TrainConfig, repo: Path) -> DataSpec:
    d = (cfg.paper or {}).get("data_spec")
    if d is not None:
        d = dict(d)
        if d.get("size") is not None:
            d["size"] = tuple(d["size"])
        return DataSpec(**d)
    from spikeloom.datasets import build_dataset

    root = cfg.root if cfg.root is None or Path(cfg.root).is_absolute() else repo / cfg.root
    try:
        return build_dataset(cfg.dataset, "test", root=root, **cfg.dataset_kwargs).spec
    except MissingDataError:
        pytest.skip(f"{cfg.dataset} data absent and no paper.data_spec declared")


def test_there_are_paper_configs():
    names = {p.stem for p in CONFIGS}
    assert {"liafnet_dvsgesture", "tdbn_resnet19_cifar10dvs", "tasnn_shd",
            "es_imagenet_liaf_resnet34", "dsr_vgg11_cifar10dvs"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_trains_one_step(path: Path):
    cfg = TrainConfig.from_yaml(path)
    full = _declared(cfg, path.parents[1])
    if "acc" in (cfg.paper or {}):
        acc = cfg.paper["acc"]
        assert acc is None or 0 < acc < 1, "paper.acc is a fraction"
        assert cfg.paper.get("source"), "a paper number needs its source"
    method = METHODS.get(cfg.method)
    options = method.resolve(cfg.method_kwargs)
    step = method.make_step(options) or STEPS.get(full.kind)
    last_error: Exception | None = None
    for side in (16, 32):
        size = None if full.size is None else tuple(min(s, side) for s in full.size)
        spec = DataSpec(full.kind, full.num_classes, T=full.T, channels=full.channels,
                        size=size, features=full.features)
        torch.manual_seed(0)
        try:
            model = build_model_for(cfg, spec)
            x = torch.rand(spec.T, 2, spec.channels, *size)
            y = torch.tensor([0, spec.num_classes - 1])
            model.train()
            opt = make_optimizer(cfg, model)
            before = [p.detach().clone() for p in model.parameters()]
            out = step(model, (x, y), cfg.loss, torch.device("cpu"))
        except (RuntimeError, ValueError) as e:  # too small for this network's pooling
            last_error = e
            continue
        assert torch.isfinite(out.loss_sum)
        out.loss_sum.backward()
        opt.step()
        changed = sum(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
        assert changed > 0
        assert model(x).shape == (2, spec.num_classes)
        return
    raise AssertionError(f"{path.name}: no synthetic size worked: {last_error}")
