"""spikeloom report: two tiny runs (two seeds of one config) and a third config -> one table."""

import json

import pytest
import yaml

from spikeloom.cli import main
from spikeloom.report import build_report
from spikeloom.train import TrainConfig, train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    common = dict(dataset="esdigits", model="spiking_cnn", epochs=1, batch_size=32,
                  max_samples=40, progress=False, quiet=True, plots=False, cost_batches=1,
                  model_kwargs={"channels": [4], "hidden": 8}, threads=1,
                  paper={"acc": 0.9, "source": "made up for the test"})
    accs = []
    for seed in (0, 1):
        r = train(TrainConfig(**common, seed=seed, out=str(base / f"s{seed}")))
        accs.append(r["test_acc"])
    train(TrainConfig(**{**common, "paper": {}}, method="dsr", out=str(base / "dsr")))
    (base / "unfinished").mkdir()
    (base / "unfinished" / "config.yaml").write_text(yaml.safe_dump({"dataset": "x"}))
    return base, accs


def test_report_pools_seeds_and_reads_cost(runs, tmp_path):
    base, accs = runs
    text, rows, skipped = build_report([base], tmp_path / "rep")
    assert skipped == [str(base / "unfinished")]
    assert len(rows) == 2
    stbp = next(r for r in rows if r.method == "stbp")
    assert sorted(stbp.accs) == sorted(accs)
    mean = sum(accs) / 2
    std = abs(accs[0] - accs[1]) / 2 ** 0.5
    assert stbp.mean == pytest.approx(mean) and stbp.std == pytest.approx(std)
    cost = json.loads((base / "s0" / "cost.json").read_text())
    assert stbp.params == cost["totals"]["params"]
    assert f"{100 * mean:.2f} ± {100 * std:.2f} | 90.00 |" in text
    dsr = next(r for r in rows if r.method == "dsr")
    assert len(dsr.accs) == 1 and dsr.paper_acc is None
    assert (tmp_path / "rep.md").read_text() == text
    assert (tmp_path / "rep.png").stat().st_size > 1000


def test_report_cli(runs, tmp_path, capsys):
    base, _ = runs
    assert main(["report", str(base / "s0"), str(base / "s1"), "--out", "-"]) == 0
    out = capsys.readouterr().out
    assert out.count("| esdigits | spiking_cnn | stbp | 2 |") == 1
    assert main(["report", str(tmp_path)]) == 2  # no runs there: one-line error
