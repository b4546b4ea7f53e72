"""``spikeloom compress RUN_DIR --method NAME [options] --epochs N --out NEW_RUN``.

Loads a trained run's selected model, measures it, applies a registered compression method
(:data:`spikeloom.compress.COMPRESS_METHODS`), fine-tunes it ``N`` epochs with the ordinary
trainer (``N = 0``: no fine-tuning), and writes a new run directory::

    NEW_RUN/
      config.yaml          the source config + ``compress: {method, options, source}``
      checkpoints/best.pt  compressed model selected on validation (last.pt when fine-tuned)
      final.json, metrics.jsonl
      cost.json            cost report at the compressed layers' precision
      integer.npz          the integer program (quantized, lowerable models; see
                           spikeloom.compress.integer), run by ``spikeloom eval --integer``
      report.json, report.md   accuracy, parameters, model bytes, SynOps, energy before/after

The new run is an ordinary run: ``spikeloom eval``, ``cost`` and ``train --resume`` rebuild the
compressed model from its config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run", "summarize"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from ..compress import COMPRESS_METHODS

    names = COMPRESS_METHODS.names()
    c = sub.add_parser("compress", help="compress a trained run (quantize, prune, ...)",
                       description="Compress a trained run and fine-tune it into a new run. "
                                   f"Methods: {', '.join(names) or '-'}.")
    c.add_argument("run_dir", help="trained run directory")
    c.add_argument("--method", required=False, help=f"compression method ({', '.join(names)})")
    c.add_argument("--out", help="new run directory (default RUN_DIR-METHOD)")
    c.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (0: none)")
    c.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate "
                   "(default: a tenth of the run's)")
    c.add_argument("--seed", type=int, default=None, help="fine-tuning seed (default: the run's)")
    c.add_argument("--checkpoint", default="best", choices=["best", "last"])
    c.add_argument("--overwrite", action="store_true", help="replace an existing NEW_RUN")
    c.add_argument("--device", default="cpu")
    c.add_argument("--quiet", action="store_true", help="print only the final table")
    c.add_argument("--sweep", metavar="FILE.yaml", help="run the methods listed in a sweep file "
                   "(spikeloom.compress.sweep); --out is the sweep folder")
    for name in names:
        m = COMPRESS_METHODS.get(name)
        if m.add_arguments is not None:
            m.add_arguments(c)
    return c


def _measure(model, cfg, data, spec, device) -> dict[str, Any]:
    """Test accuracy, parameters, stored bytes, SynOps and energy of ``model``."""
    from ..compress.size import model_bytes, param_count
    from ..train import DistInfo, cost_report, evaluate, global_batches, make_loader

    ds = data["test"]
    loader = make_loader(ds, global_batches(len(ds), cfg.batch_size, 0, 0, False), DistInfo())
    res = evaluate(model, loader, cfg.loss, device, task=spec.kind)
    rep = cost_report(model, data["val"], cfg, device)
    tot = rep.totals
    return {"test_acc": res["acc"], "params": param_count(model), "model_bytes": model_bytes(model),
            "synops": tot["SynOps"], "energy_j": rep.snn_energy,
            "_report": rep}


def summarize(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The before/after table printed by ``spikeloom compress``."""
    rows = [("accuracy (test)", "test_acc", "{:.4f}"), ("parameters", "params", "{:,}"),
            ("model bytes", "model_bytes", "{:,.0f}"), ("SynOps / sample", "synops", "{:.4g}"),
            ("energy / sample (J)", "energy_j", "{:.4g}")]
    lines = [f"{'':22s}{'before':>14s}{'after':>14s}{'ratio':>9s}"]
    for label, key, fmt in rows:
        b, a = before.get(key), after.get(key)
        ratio = f"{a / b:.3f}" if isinstance(a, (int, float)) and b else "-"
        lines.append(f"{label:22s}{fmt.format(b) if b is not None else '-':>14s}"
                     f"{fmt.format(a) if a is not None else '-':>14s}{ratio:>9s}")
    return "\n".join(lines)


def _write_without_finetuning(cfg, out: Path, device) -> None:
    """``--epochs 0``: build the compressed model, select it as is, write the run files."""
    from ..atomic import atomic_write_text
    from ..train.build import build_data, build_model_for, dataset_spec
    from ..train.checkpoint import save_best
    from ..train.rundir import RunLock, prepare_run_dir

    lock = RunLock(out)
    try:
        prepare_run_dir(out, lock, resuming=False, overwrite=cfg.overwrite)
        data, _ = build_data(cfg)
        model = build_model_for(cfg, dataset_spec(data["train"])).to(device)
        cfg.to_yaml(out / "config.yaml")
        (out / "checkpoints").mkdir(exist_ok=True)
        save_best(out / "checkpoints" / "best.pt", model, 0, float("nan"))
        atomic_write_text(out / "metrics.jsonl", "")
    finally:
        lock.release()


def _lower_to_file(model, ds, path: Path) -> str:
    """Write the integer program of a quantized model; returns the path or why not."""
    from ..compress.quant.api import is_quantized
    from ..errors import ConfigError

    if not is_quantized(model):
        return "not lowered: the model is not quantized"
    from ..compress.integer import lower

    x = ds[0][0].unsqueeze(1)
    try:
        lower(model, x).save(path)
    except ConfigError as e:
        return f"not lowered: {e}"
    return str(path)


def run(args: argparse.Namespace) -> int:
    from ..compress import COMPRESS_METHODS
    from ..compress.methods import method_options
    from ..errors import ConfigError
    from ..train import load_run, train
    from ..train.build import dataset_spec

    if getattr(args, "sweep", None):
        from ..compress.sweep import run_sweep_cli

        return run_sweep_cli(args)
    if not args.method:
        raise ConfigError("--method is required (one of: "
                          f"{', '.join(COMPRESS_METHODS.names())})")
    method = COMPRESS_METHODS.get(args.method)
    if args.epochs < 0:
        raise ConfigError(f"--epochs must be >= 0, got {args.epochs}")
    if args.epochs > 0 and not method.finetune:
        raise ConfigError(f"method {method.name!r} is not fine-tuned: use --epochs 0")
    src = Path(args.run_dir)
    ck = (src / "checkpoints" / f"{args.checkpoint}.pt").resolve()
    cfg, model, data = load_run(src, args.checkpoint, args.device)
    spec = dataset_spec(data["train"])
    say = (lambda *a: None) if args.quiet else print
    say(f"measuring {src} ({args.checkpoint}.pt) ...")
    before = _measure(model, cfg, data, spec, args.device)
    options = {k: getattr(args, k) for k in method_options(method)}
    out = Path(args.out) if args.out else src.with_name(f"{src.name}-{method.name}")
    new = dataclasses.replace(
        cfg, out=str(out), epochs=max(args.epochs, 1), overwrite=args.overwrite,
        lr=args.lr if args.lr else cfg.lr / 10, plots=False, progress=False, quiet=args.quiet,
        device=args.device, seed=cfg.seed if getattr(args, "seed", None) is None else args.seed,
        compress={"method": method.name, "options": options, "source": str(ck)},
    )
    new.validate()
    if args.epochs > 0:
        cbs = method.callbacks(argparse.Namespace(**options)) if method.callbacks else []
        train(new, callbacks=cbs)
    else:
        _write_without_finetuning(new, out, args.device)
    _, cmodel, _ = load_run(out, "best", args.device)
    after = _measure(cmodel, new, data, spec, args.device)
    after["_report"].to_json(out / "cost.json")
    integer = _lower_to_file(cmodel, data["val"], out / "integer.npz")
    report = {"source": str(src), "method": method.name, "options": options,
              "epochs": args.epochs, "integer_program": integer,
              "before": {k: v for k, v in before.items() if not k.startswith("_")},
              "after": {k: v for k, v in after.items() if not k.startswith("_")}}
    from ..atomic import atomic_write_text

    table = summarize(before, after)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    atomic_write_text(out / "report.md", f"# {method.name} compression of {src}\n\n"
                      f"options: `{json.dumps(options)}`, fine-tuning epochs: {args.epochs}\n\n"
                      f"```\n{table}\n```\n")
    if not (out / "final.json").exists():
        atomic_write_text(out / "final.json", json.dumps(
            {"test_acc": after["test_acc"], "epochs": 0, "best_epoch": 0}, indent=2))
    print(table)
    say(f"compressed run: {out}")
    return 0
