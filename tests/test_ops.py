"""Every available backend of every operator against that operator's reference.

A new backend is tested by registering it (``spikeloom.ops.register_backend``); a new operator
by adding one case function to ``CASES`` below. Each case gets the backend's function and the
reference function and asserts that they agree (outputs and, where differentiable, gradients).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spikeloom.ops import available_backends, get_backend

CASES: dict[str, Callable[[Callable, Callable], None]] = {}


def case(op: str):
    def deco(fn):
        CASES[op] = fn
        return fn

    return deco


# ----------------------------------------------------------------------------- neuron_sequence

_NEURON_SPECS = [
    dict(reset="hard"),
    dict(reset="hard", v_reset=-0.2, fire_ge=True),
    dict(reset="hard", detach_reset=True, surrogate="sigmoid"),
    dict(reset="soft", surrogate="arctan"),
    dict(reset="soft", detach_reset=True, surrogate="triangular", width=2.0),
    dict(reset="hard", surrogate="gaussian", v_th=0.3),
]


@case("neuron_sequence")
def _neuron_case(fn, ref) -> None:
    import torch

    from spikeloom.ops.neuron_sequence import NeuronSpec

    gen = torch.Generator().manual_seed(0)
    for i, kw in enumerate(_NEURON_SPECS):
        spec = NeuronSpec.make(**kw)
        for decay_kind in ("float", "tensor"):
            for with_v0 in (False, True):
                shape = (5, 3, 4, 2)
                x = (torch.rand(shape, generator=gen, dtype=torch.float64) * 0.8).requires_grad_()
                decay = (0.3 if decay_kind == "float" else
                         torch.rand(4, 1, generator=gen, dtype=torch.float64).mul(0.8).add(0.1)
                         .requires_grad_())
                v0 = (torch.rand(shape[1:], generator=gen, dtype=torch.float64) * 0.3)
                v0 = v0.requires_grad_() if with_v0 else None
                results = []
                for f in (fn, ref):
                    s, u, v = f(x, decay, spec, v0)
                    # a loss that reaches every output: spikes, potentials and the final state
                    w = torch.linspace(-1, 1, s.numel(), dtype=torch.float64).view_as(s)
                    loss = (s * w).sum() + (u * w.flip(0)).sum() + (v ** 2).sum()
                    inputs = [x] + [t for t in (decay, v0) if isinstance(t, torch.Tensor)
                                    and t.requires_grad]
                    grads = torch.autograd.grad(loss, inputs)
                    results.append((s.detach(), u.detach(), v.detach(), grads))
                (s1, u1, v1, g1), (s2, u2, v2, g2) = results
                where = f"spec {i} {kw}, decay {decay_kind}, v0 {with_v0}"
                assert torch.equal(s1, s2), where
                torch.testing.assert_close(u1, u2, msg=where)
                torch.testing.assert_close(v1, v2, msg=where)
                for a, b in zip(g1, g2):
                    torch.testing.assert_close(a, b, msg=where)


def _rel_l2(a, b) -> float:
    """``|a - b| / |b|`` (L2, in float64)."""
    den = float(b.double().norm())
    return float((a.double() - b.double()).norm()) / den if den else float(a.double().norm())


def _neuron_run(f, spec, x, decay, v0, loss_on, dtype=None, **kw):
    """``(s, u, v, grads)`` of ``f`` on the inputs (cast to ``dtype`` when given, as new leaves
    with the same ``requires_grad``), gradients of a loss reaching the outputs in ``loss_on``."""
    import torch

    def cast(t):
        if not isinstance(t, torch.Tensor) or dtype is None:
            return t
        return t.detach().to(dtype).requires_grad_(t.requires_grad)

    x, decay, v0 = cast(x), cast(decay), cast(v0)
    inputs = [t for t in (x, decay, v0) if isinstance(t, torch.Tensor) and t.requires_grad]
    s, u, v = f(x, decay, spec, v0, **kw)
    w = torch.linspace(0.5, 1.5, s.numel(), dtype=x.dtype).view_as(s)
    loss = sum(((s * w).sum() if "s" in loss_on else 0.0,
                (u * w.flip(0)).sum() if "u" in loss_on else 0.0,
                (v ** 2).sum() if "v" in loss_on else 0.0))
    grads = torch.autograd.grad(loss, inputs, allow_unused=True) if inputs and \
        isinstance(loss, torch.Tensor) and loss.requires_grad else ()
    return s.detach(), (None if u is None else u.detach()), v.detach(), grads


def _neuron_compare(fn, ref, spec, x, decay, v0, where: str, loss_on=("s", "u", "v"),
                    need_u: bool = True) -> None:
    """Run ``fn`` and ``ref`` on the same inputs; spikes must be equal, potentials, state and
    the gradients of a loss reaching every output must agree to rel. L2 1e-6 (float32) or
    1e-12 (float64, i.e. equal up to rounding). In float32 a value may instead be within 1e-6
    of the float64 reference (the exact answer) when the float32 reference itself is the less
    accurate one (a long reduction such as a scalar decay's gradient, summed in another order);
    that fallback applies only when the float64 run has the same spikes. With
    ``need_u=False`` ``fn`` must return no potentials (``None``) and the loss leaves them out."""
    import torch

    tol = 1e-12 if x.dtype == torch.float64 else 1e-6
    if not need_u:
        loss_on = tuple(o for o in loss_on if o != "u")
    s1, u1, v1, g1 = _neuron_run(fn, spec, x, decay, v0, loss_on, need_u=need_u)
    if not need_u:
        assert u1 is None, where
        u1 = fn(x, decay, spec, v0)[1].detach()  # compared below like any run
    s2, u2, v2, g2 = _neuron_run(ref, spec, x, decay, v0, loss_on)
    assert s1.shape == s2.shape and u1.shape == u2.shape and v1.shape == v2.shape, where
    assert torch.equal(s1, s2), where
    exact = None
    for i, (a, b) in enumerate(zip((u1, v1, *g1), (u2, v2, *g2))):
        if b is None:
            assert a is None or not a.any(), where
            continue
        assert a.shape == b.shape and a.dtype == b.dtype, where
        err = _rel_l2(a, b)
        if err > tol and x.dtype == torch.float32:
            if exact is None:
                s3, u3, v3, g3 = _neuron_run(ref, spec, x, decay, v0, loss_on, torch.float64)
                exact = (u3, v3, *g3) if torch.equal(s3.float(), s2) else ()
            if exact:
                err = min(err, _rel_l2(a, exact[i]))
        assert err <= tol, f"{where}: rel L2 {err:.3g} > {tol}"


def _neuron_backends() -> list[str]:
    return [b for b in available_backends("neuron_sequence", "cpu") if b != "reference"]


@pytest.mark.parametrize("backend", _neuron_backends())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_neuron_backend_every_combination(backend: str, dtype: str) -> None:
    """Every surrogate x reset x comparison x detach x decay kind x initial state."""
    import itertools

    import torch

    from spikeloom.ops.neuron_sequence import NeuronSpec
    from spikeloom.surrogate import SURROGATES

    fn, ref = get_backend("neuron_sequence", backend).fn, get_backend("neuron_sequence",
                                                                        "reference").fn
    dt = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(1)
    combos = itertools.product(SURROGATES.names(), ("hard", "soft"), (False, True),
                               (False, True), ("float", "scalar", "channel"), (False, True))
    for i, (sur, reset, ge, det, dk, with_v0) in enumerate(combos):
        spec = NeuronSpec.make(surrogate=sur, reset=reset, fire_ge=ge, detach_reset=det,
                               v_th=0.4, v_reset=-0.1 if i % 3 == 0 else 0.0)
        x = (torch.rand(4, 2, 3, 5, generator=gen, dtype=dt) * 0.9).requires_grad_()
        if i % 7 == 0:  # inputs landing exactly on the threshold: > and >= differ there
            x.data[1, 0] = 0.4
        decay = {"float": 0.3,
                 "scalar": torch.tensor(0.6, dtype=dt).requires_grad_(),
                 "channel": torch.rand(3, 1, generator=gen, dtype=dt).add(0.1)
                 .requires_grad_()}[dk]
        v0 = (torch.rand(2, 3, 5, generator=gen, dtype=dt) * 0.3).requires_grad_() \
            if with_v0 else None
        # need_u=False changes the computation only in cpu_kernel (it recomputes u in backward)
        for need_u in (True, False) if backend == "cpu_kernel" else (True,):
            _neuron_compare(fn, ref, spec, x, decay, v0, f"{backend} {dtype} combo {i}: "
                            f"{sur} {reset} ge={ge} detach={det} decay={dk} v0={with_v0} "
                            f"need_u={need_u}", need_u=need_u)


@pytest.mark.parametrize("backend", _neuron_backends())
def test_neuron_backend_shapes_strides_and_edge_cases(backend: str) -> None:
    """Random shapes, T = 1, an empty batch, non-contiguous inputs and partial losses."""
    import torch

    from spikeloom.ops.neuron_sequence import NeuronSpec

    fn, ref = get_backend("neuron_sequence", backend).fn, get_backend("neuron_sequence",
                                                                        "reference").fn
    gen = torch.Generator().manual_seed(2)
    spec = NeuronSpec.make(surrogate="sigmoid", reset="soft")
    for trial in range(12):
        nd = int(torch.randint(0, 4, (1,), generator=gen))
        shape = [int(torch.randint(1, 7, (1,), generator=gen)) for _ in range(2 + nd)]
        if trial == 0:
            shape[0] = 1  # T = 1
        x = torch.rand(shape, generator=gen) * 0.9
        if trial % 3 == 1:  # non-contiguous: time and batch swapped, then swapped back
            x = x.transpose(0, 1).contiguous().transpose(0, 1)
        elif trial % 3 == 2 and x.ndim > 2:  # a strided slice of the last dimension
            x = torch.rand(*shape[:-1], 2 * shape[-1], generator=gen)[..., ::2] * 0.9
        x.requires_grad_()
        _neuron_compare(fn, ref, spec, x, 0.5, None, f"trial {trial} shape {shape}",
                        loss_on=("s", "u", "v") if trial % 2 else ("s",),
                        need_u=trial % 4 != 0)
    empty = torch.rand(3, 0, 4).requires_grad_()  # empty batch
    s, u, v = fn(empty, 0.5, spec)
    assert s.shape == (3, 0, 4) and v.shape == (0, 4)
    s.sum().backward()
    assert empty.grad.shape == (3, 0, 4)
    # the gradient of sum() arrives expanded (stride 0): must equal a materialized one
    x = torch.rand(5, 3, 8).requires_grad_()
    fn(x, 0.5, spec)[0].sum().backward()
    g1 = x.grad.clone()
    x.grad = None
    s = fn(x, 0.5, spec)[0]
    s.backward(torch.ones_like(s))
    assert torch.equal(g1, x.grad)


def test_cpu_kernel_falls_back_and_traces_under_compile() -> None:
    """Half precision and custom surrogates go to torch_fused; torch.compile(fullgraph=True)
    traces the torch.library op (aot_eager: CI-fast, same graph capture as inductor)."""
    import torch

    from spikeloom.neurons import LIF
    from spikeloom.ops.neuron_sequence import NeuronSpec
    from spikeloom.ops.neuron_sequence import cpu_kernel as ck
    from spikeloom.surrogate import Rectangular

    if ck.kernel is None:
        pytest.skip(ck.unavailable_reason())
    fn, fused = ck.neuron_sequence_cpu_kernel, get_backend("neuron_sequence", "torch_fused").fn

    class Wide(Rectangular):  # a custom surrogate: the kernel does not know its grad
        def grad(self, z):
            return super().grad(z) * 2

    spec = NeuronSpec(surrogate=Wide())
    assert ck.surrogate_code(spec.surrogate) is None
    x = (torch.rand(4, 3, 5) * 0.9).requires_grad_()
    _neuron_compare(fn, fused, spec, x, 0.5, None, "custom surrogate")
    xh = torch.rand(4, 3, 5).to(torch.bfloat16)
    assert torch.equal(fn(xh, 0.5, NeuronSpec())[0], fused(xh, 0.5, NeuronSpec())[0])

    for need_u in (True, False):
        torch.library.opcheck(torch.ops.spikeloom.neuron_seq.default,
                              (torch.rand(3, 2, 4, dtype=torch.float64).requires_grad_(),
                               torch.tensor(0.5, dtype=torch.float64), None, 0.5, 0.0, False,
                               False, False, 2, 4.0, need_u))
    lif = LIF(surrogate="arctan", learn_decay=True)
    lif.check_finite = False  # its data-dependent check would be a graph break
    x = torch.rand(6, 2, 8) * 0.9
    eager_out = lif(x)
    eager_out.sum().backward()
    g_eager = lif.decay_logit.grad.clone()
    lif.decay_logit.grad = None
    torch._dynamo.reset()
    compiled = torch.compile(lif, backend="aot_eager", fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    assert torch.equal(out, eager_out)
    torch.testing.assert_close(lif.decay_logit.grad, g_eager)


def test_cpu_kernel_recompute_and_isa_variants_are_bit_identical() -> None:
    """The backward that recomputes ``u`` (``need_u=False``) gives the same gradients bit for
    bit as the one reading the saved ``u``, over chunk boundaries and several threads; every
    compiled ISA variant (AVX-512 / AVX2 / baseline, where the CPU has them) gives the same
    spikes, potentials and state bit for bit, and gradients equal up to the fused multiply-adds
    of the vector variants (bit-identical between AVX-512 and AVX2, rel. L2 <= 1e-6 against the
    baseline)."""
    import torch

    from spikeloom.ops.neuron_sequence import NeuronSpec
    from spikeloom.ops.neuron_sequence import cpu_kernel as ck

    if ck.kernel is None:
        pytest.skip(ck.unavailable_reason())
    gen = torch.Generator().manual_seed(3)
    for dt in (torch.float32, torch.float64):
        for spec, decay in ((NeuronSpec.make(surrogate="sigmoid", fire_ge=True), 0.3),
                            (NeuronSpec.make(surrogate="triangular", reset="soft"),
                             torch.rand(7, 1, generator=gen, dtype=dt).add(0.2))):
            x = torch.rand(9, 5, 7, 300, generator=gen, dtype=dt)  # 10,500 neurons: 3+ chunks
            v0 = torch.rand(5, 7, 300, generator=gen, dtype=dt) * 0.2
            g = torch.randn(x.shape, generator=gen, dtype=dt)
            grads = []
            for need_u in (True, False):
                xi, v0i = x.clone().requires_grad_(), v0.clone().requires_grad_()
                d = decay.clone().requires_grad_() if isinstance(decay, torch.Tensor) else decay
                s, _, v = ck.neuron_sequence_cpu_kernel(xi, d, spec, v0i, need_u=need_u)
                (s * g).sum().add((v ** 2).sum()).backward()
                grads.append((s, xi.grad, v0i.grad,
                              d.grad if isinstance(d, torch.Tensor) else None))
            for a, b in zip(*grads):
                assert (a is None and b is None) or torch.equal(a, b), dt
    k = ck.kernel
    isas = k.isas()
    assert isas[-1] == "base" and set(isas) <= set(k.all_isas())
    x = torch.rand(6, 5000, generator=gen) * 0.9
    g = torch.randn(6, 5000, generator=gen)
    kt = torch.tensor(0.25)
    outs = []
    for name in isas:
        isa = k.all_isas().index(name)
        s, u, v, gx = (torch.empty(6, 5000), torch.empty(6, 5000), torch.empty(5000),
                       torch.empty(6, 5000))
        k.forward(False, 6, 5000, (x.data_ptr(), 5000, 1), (kt.data_ptr(), 0, 0), (0, 0, 0),
                  s.data_ptr(), u.data_ptr(), v.data_ptr(), 0.5, 0.0, False, False, 2, isa)
        k.backward(False, 6, 5000, u.data_ptr(), (kt.data_ptr(), 0, 0), (g.data_ptr(), 5000, 1),
                   (0, 0, 0), (0, 0, 0), gx.data_ptr(), 0, 0.5, 0.0, False, False, False, 2,
                   4.0, 2, isa)
        outs.append((s, u, v, gx))
    for name, o in zip(isas[1:], outs[1:]):
        assert all(torch.equal(a, b) for a, b in zip(outs[0][:3], o[:3])), name
        if name == "base" and isas[0] != "base":
            assert _rel_l2(outs[0][3], o[3]) <= 1e-6, name
        else:
            assert torch.equal(outs[0][3], o[3]), name
    unsupported = [i for i, n in enumerate(k.all_isas()) if n not in isas]
    for i in unsupported:  # named but not on this CPU: a clear error, nothing run
        with pytest.raises(ValueError, match="not available"):
            k.forward(False, 6, 5000, (x.data_ptr(), 5000, 1), (kt.data_ptr(), 0, 0),
                      (0, 0, 0), s.data_ptr(), u.data_ptr(), v.data_ptr(), 0.5, 0.0, False,
                      False, 1, i)


# ----------------------------------------------------------------------------- frames


@case("frames")
def _frames_case(fn, ref) -> None:
    import numpy as np

    from spikeloom.events.core import EVENT_DTYPE
    from spikeloom.events.slicing import (
        SliceByEventBins,
        SliceByEventCount,
        SliceByTime,
        SliceByTimeBins,
    )

    def stream(rng, n, size, t_max, sort=True, bad=0):
        w, h, p = size
        ev = np.empty(n, EVENT_DTYPE)
        ev["x"], ev["y"] = rng.integers(0, w, n), rng.integers(0, h, n)
        ev["p"], ev["t"] = rng.integers(0, p, n), rng.integers(0, t_max, n)
        if sort:
            ev["t"] = np.sort(ev["t"])
        for i in rng.integers(0, max(n, 1), bad if n else 0):  # out-of-range events
            field = str(rng.choice(["x", "y", "p"]))
            ev[field][i] = dict(x=w, y=h, p=p)[field] + int(rng.integers(0, 3))
        return ev

    def fixed(lo, hi):  # explicit ranges: overlapping, empty, nested
        return lambda t: (np.minimum(lo, len(t)), np.minimum(hi, len(t)))

    def run(f, ev, ranges, size, by_time, check_all):
        try:
            return f(ev, ranges, size, by_time=by_time, check_all=check_all), None
        except ValueError as err:
            return None, str(err)

    rng = np.random.default_rng(0)
    slicers = [SliceByTime(37), SliceByTime(50, overlap=30), SliceByTime(20, n_slices=4,
               start_time=100), SliceByTimeBins(5), SliceByTimeBins(3, rule="floor"),
               SliceByEventCount(13), SliceByEventCount(10, overlap=7, n_slices=40),
               SliceByEventBins(4)]
    explicit = [fixed(np.array([0, 3, 3, 8, 8, 10]), np.array([8, 8, 8, 8, 30, 400])),
                fixed(np.array([], int), np.array([], int))]
    n_errors = 0
    for trial in range(240):
        size = (int(rng.integers(1, 9)), int(rng.integers(1, 7)), int(rng.choice([1, 2, 3])))
        n = int(rng.choice([0, 1, 17, 300, 2000]))
        ev = stream(rng, n, size, int(rng.choice([1, 60, 1000])), sort=rng.random() < 0.7,
                    bad=int(rng.random() < 0.25) * int(rng.integers(1, 4)))
        if trial % 3:
            slicer = slicers[trial % len(slicers)]
            ranges, by_time = slicer.indices, slicer.by_time
        else:
            ranges, by_time = explicit[trial % 2], bool(rng.random() < 0.5)
        check_all = bool(rng.random() < 0.5)
        got, err = run(fn, ev, ranges, size, by_time, check_all)
        want, err_ref = run(ref, ev, ranges, size, by_time, check_all)
        where = f"trial {trial}: n={n} size={size} by_time={by_time} check_all={check_all}"
        assert err == err_ref, where
        if err is not None:
            n_errors += 1
            assert err.startswith("event "), where
            continue
        for a, b in zip(got, want):  # events (maybe sorted), start, stop, counts
            assert a.dtype == b.dtype and a.shape == b.shape, where
            np.testing.assert_array_equal(a, b, err_msg=where)
    assert 20 < n_errors < 120  # both the error and the counting branches ran
    # counter dtype limits: the longest frame decides (255 -> uint8, 256 -> uint16, ...)
    for n, dtype in ((255, np.uint8), (256, np.uint16), (65_535, np.uint16), (65_536, np.uint32)):
        ev = np.zeros(n, EVENT_DTYPE)  # every event on one pixel: counts reach the bound
        for f in (fn, ref):
            _, _, _, counts = f(ev, SliceByEventBins(1).indices, (2, 2, 2), by_time=False,
                                check_all=False)
            assert counts.dtype == dtype and int(counts[0, 0]) == n and int(counts.sum()) == n


# ----------------------------------------------------------------------------- the test


def _pairs() -> list[tuple[str, str]]:
    return [(op, b) for op in CASES for b in available_backends(op, "cpu")]


@pytest.mark.parametrize(("op", "backend"), _pairs())
def test_backend_matches_reference(op: str, backend: str) -> None:
    CASES[op](get_backend(op, backend).fn, get_backend(op, "reference").fn)


def test_every_op_has_a_reference_and_a_case() -> None:
    for op in ("neuron_sequence", "frames"):
        assert "reference" in available_backends(op)
        assert op in CASES


# ----------------------------------------------------------------------------- dispatch


def test_select_prefers_priority_and_env_forces(monkeypatch) -> None:
    from spikeloom.ops import select

    monkeypatch.delenv("SPIKELOOM_BACKEND_NEURON_SEQUENCE", raising=False)
    fastest = "cpu_kernel" if "cpu_kernel" in available_backends("neuron_sequence") else \
        "torch_fused"
    assert select("neuron_sequence", "cpu").name == fastest
    monkeypatch.setenv("SPIKELOOM_BACKEND_NEURON_SEQUENCE", "reference")
    assert select("neuron_sequence", "cpu").name == "reference"


def test_forced_backend_is_used_by_modules(monkeypatch) -> None:
    import torch

    import spikeloom.ops.neuron_sequence.reference as ref_mod
    from spikeloom.neurons import LIF

    calls = []
    real = ref_mod.neuron_sequence_reference

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    from spikeloom.ops import register_backend

    register_backend("neuron_sequence", "spy", spy, priority=-1)
    try:
        monkeypatch.setenv("SPIKELOOM_BACKEND_NEURON_SEQUENCE", "spy")
        LIF()(torch.rand(3, 2, 4))
        assert calls == [1]
    finally:
        from spikeloom.ops._dispatch import _OPS

        _OPS["neuron_sequence"].unregister("spy")


def test_unknown_or_unavailable_backend_is_a_clear_error(monkeypatch) -> None:
    import torch

    from spikeloom.errors import BackendError
    from spikeloom.ops import register_backend, select
    from spikeloom.ops._dispatch import _OPS

    monkeypatch.setenv("SPIKELOOM_BACKEND_NEURON_SEQUENCE", "nope")
    with pytest.raises(BackendError, match=r"SPIKELOOM_BACKEND_NEURON_SEQUENCE=nope.*"
                                           r"registered: (cpu_kernel, )?reference, torch_fused"):
        select("neuron_sequence", "cpu")
    register_backend("neuron_sequence", "broken", lambda *a: None,
                     is_available=lambda: "its extension is not built")
    try:
        monkeypatch.setenv("SPIKELOOM_BACKEND_NEURON_SEQUENCE", "broken")
        with pytest.raises(BackendError, match="cannot run here: its extension is not built"):
            from spikeloom.functional import neuron_sequence

            neuron_sequence(torch.zeros(2, 1))
        assert "broken" not in available_backends("neuron_sequence")
    finally:
        _OPS["neuron_sequence"].unregister("broken")
    with pytest.raises(BackendError, match="unknown operator"):
        available_backends("no_such_op")


def test_neuron_spec_is_frozen_and_shared_by_neurons() -> None:
    import dataclasses

    from spikeloom.neurons import LIAF, LIF
    from spikeloom.ops.neuron_sequence import NeuronSpec
    from spikeloom.surrogate import Sigmoid

    spec = NeuronSpec.make(v_th=0.3, surrogate="sigmoid", width=2.0, reset="soft")
    assert spec.surrogate == Sigmoid(2.0) and spec.soft
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.v_th = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="reset must be"):
        NeuronSpec(reset="sideways")
    with pytest.raises(ValueError, match="v_th"):
        NeuronSpec(v_th=float("nan"))
    lif = LIF(v_th=0.3, surrogate="sigmoid", width=2.0, reset="soft")
    assert lif.spec == spec
    lif.v_th = 0.7  # assigning an attribute replaces the spec
    assert lif.spec == spec.replace(v_th=0.7) and lif.v_th == 0.7
    liaf = LIAF(fire_ge=True)
    assert liaf.spec.detach_reset and liaf.spec.fire_ge
