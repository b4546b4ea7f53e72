"""``spikeloom export RUN_DIR --format nir|onnx OUT``: a run's selected model for other tools.

* ``nir``: :func:`spikeloom.export.write_nir` (needs ``--dt``, seconds per time step);
* ``onnx``: :func:`spikeloom.export.onnx.export_onnx`, unrolled over ``--T`` steps (default
  the dataset's ``T``) for batch size ``--batch-size``.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser("export", help="export a run's model to NIR or ONNX")
    e.add_argument("run_dir")
    e.add_argument("--format", required=True, choices=["nir", "onnx"])
    e.add_argument("out", help="output file (.nir or .onnx)")
    e.add_argument("--dt", type=float, default=None,
                   help="NIR: seconds per time step (required for --format nir)")
    e.add_argument("--T", type=int, default=None, help="ONNX: time steps (default: dataset's)")
    e.add_argument("--batch-size", type=int, default=1, help="ONNX: batch size in the graph")
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    return e


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..train import load_run
    from ..train.build import dataset_spec

    if args.format == "nir" and args.dt is None:
        raise ConfigError("--format nir needs --dt (seconds per time step, e.g. --dt 1e-3)")
    import importlib

    try:  # the optional package of the 'interop' extra this format needs
        importlib.import_module(args.format)
    except ImportError as e:
        raise ConfigError(f"spikeloom export needs the optional package {e.name!r}; install "
                          "the 'interop' extra (pip install 'spikeloom[interop]')") from None
    cfg, model, data = load_run(args.run_dir, args.checkpoint, "cpu")
    spec = dataset_spec(data["train"])
    if spec.channels is None:
        raise ConfigError(f"export needs per-step input channels; dataset {cfg.dataset!r} "
                          "does not state them")
    shape = (spec.channels, *(spec.size or ()))
    if args.format == "nir":
        from ..export import write_nir

        graph = write_nir(model, args.out, dt=args.dt, input_shape=shape)
        print(f"wrote {args.out}: NIR graph with {len(graph.nodes)} nodes, "
              f"{len(graph.edges)} edges, dt={args.dt:g} s")
        return 0
    from ..export.onnx import export_onnx

    T = args.T or spec.T
    if T is None:
        raise ConfigError("--format onnx needs --T (the dataset has no fixed number of steps)")
    names = export_onnx(model, args.out, T=T, input_shape=shape, batch_size=args.batch_size)
    print(f"wrote {args.out}: ONNX, input frames [{T}, {args.batch_size}, "
          f"{', '.join(map(str, shape))}], outputs {', '.join(names)}")
    return 0
