"""Tests for the event-array type (spikeloom.events.core)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from spikeloom.events.core import (
    EVENT_DTYPE,
    TENSOR_COLUMNS,
    EventArray,
    as_events,
    check_sensor_size,
    concatenate,
    from_tensor,
    make_events,
    sort_by_time,
    to_tensor,
)

SIZE = (4, 3, 2)


@pytest.fixture
def ev() -> EventArray:
    return make_events([0, 3, 1, 2], [2, 0, 1, 2], [1, 0, 1, 0], [50, 10, 30, 30], SIZE)


def test_event_dtype_is_fixed() -> None:
    assert EVENT_DTYPE == np.dtype([("x", "<u2"), ("y", "<u2"), ("p", "u1"), ("t", "<i8")])


def test_make_events_fields(ev: EventArray) -> None:
    assert isinstance(ev, EventArray)
    assert ev.dtype == EVENT_DTYPE
    assert ev.shape == (4,)
    assert ev.sensor_size == SIZE
    assert ev["x"].tolist() == [0, 3, 1, 2]
    assert ev["y"].tolist() == [2, 0, 1, 2]
    assert ev["p"].tolist() == [1, 0, 1, 0]
    assert ev["t"].tolist() == [50, 10, 30, 30]
    assert ev.duration == 40


def test_make_events_accepts_bool_polarity_and_integral_floats() -> None:
    e = make_events([1], [1], [True], [12.0], SIZE)
    assert e["p"][0] == 1 and e["t"][0] == 12
    empty = make_events([], [], [], [], SIZE)
    assert empty.size == 0 and empty.sensor_size == SIZE and empty.duration == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(x=[4], y=[0], p=[0], t=[0]), r"x=4 .* x < W=4"),
        (dict(x=[0], y=[3], p=[0], t=[0]), r"y=3 .* y < H=3"),
        (dict(x=[0], y=[0], p=[2], t=[0]), r"p=2 .* p < P=2"),
        (dict(x=[-1], y=[0], p=[0], t=[0]), "negative"),
        (dict(x=[0, 1], y=[0], p=[0], t=[0]), "same length"),
        (dict(x=[0], y=[0], p=[0], t=[1.5]), "non-integral"),
        (dict(x=[[0]], y=[0], p=[0], t=[0]), "1-D"),
    ],
)
def test_make_events_rejects_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_events(sensor_size=SIZE, **kwargs)


@pytest.mark.parametrize("bad", [(4, 3), (4, 0, 2), (4, 3, 2.0), "abc", None, (70000, 1, 1)])
def test_check_sensor_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="sensor_size"):
        check_sensor_size(bad)


def test_check_sensor_size_normalises() -> None:
    out = check_sensor_size(np.array([34, 34, 2]))
    assert out == (34, 34, 2) and all(type(v) is int for v in out)


def test_sensor_size_survives_views_copies_and_pickle(ev: EventArray) -> None:
    for derived in (
        ev[1:],
        ev[ev["p"] == 1],
        ev[[3, 0]],
        ev.copy(),
        copy.deepcopy(ev),
        np.sort(ev, order="t"),
        pickle.loads(pickle.dumps(ev)),
    ):
        assert isinstance(derived, EventArray)
        assert derived.sensor_size == SIZE
    back = pickle.loads(pickle.dumps(ev))
    assert np.array_equal(back.view(np.ndarray), ev.view(np.ndarray))


def test_field_access_and_ufuncs_return_plain_arrays(ev: EventArray) -> None:
    assert type(ev["t"]) is np.ndarray
    eq = ev == ev.copy()
    assert type(eq) is np.ndarray and eq.dtype == bool and bool(eq.all())
    assert isinstance(ev[0], np.void)
    assert "sensor_size=(4, 3, 2)" in repr(ev)


def test_constructor_and_as_events_from_plain_array(ev: EventArray) -> None:
    plain = ev.view(np.ndarray).copy()
    with pytest.raises(ValueError, match="sensor_size"):
        as_events(plain)
    a = as_events(plain, SIZE)
    assert isinstance(a, EventArray) and a.sensor_size == SIZE
    assert np.shares_memory(a, plain)  # no copy for the right dtype
    b = EventArray(plain, SIZE)
    assert np.array_equal(b.view(np.ndarray), plain)
    assert as_events(ev) is ev
    with pytest.raises(ValueError, match="x=3 .* x < W=3"):
        as_events(ev, (3, 3, 2))


def test_as_events_converts_foreign_dtype() -> None:
    # tonic-like layout: different field order, bool polarity, int64 coordinates
    foreign = np.zeros(3, dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "?")])
    foreign["t"] = [5, 6, 7]
    foreign["x"] = [1, 2, 3]
    foreign["y"] = [0, 1, 2]
    foreign["p"] = [True, False, True]
    e = as_events(foreign, (4, 4, 2))
    assert e.dtype == EVENT_DTYPE
    assert e["x"].tolist() == [1, 2, 3] and e["p"].tolist() == [1, 0, 1]
    assert e["t"].tolist() == [5, 6, 7]
    with pytest.raises(ValueError, match="lacks fields"):
        as_events(np.zeros(2, dtype=[("x", "u2"), ("t", "i8")]), (4, 4, 2))
    with pytest.raises(ValueError, match="structured array"):
        as_events(np.zeros((2, 4)), (4, 4, 2))


def test_to_tensor_column_order(ev: EventArray) -> None:
    assert TENSOR_COLUMNS == ("t", "x", "y", "p")
    t = to_tensor(ev)
    assert t.dtype == torch.int64 and tuple(t.shape) == (4, 4)
    expected = [[50, 0, 2, 1], [10, 3, 0, 0], [30, 1, 1, 1], [30, 2, 2, 0]]
    assert t.tolist() == expected
    back = from_tensor(t, SIZE)
    assert np.array_equal(back.view(np.ndarray), ev.view(np.ndarray))
    assert back.sensor_size == SIZE
    # int32 input and an empty tensor
    assert from_tensor(t.to(torch.int32), SIZE)["t"].tolist() == [50, 10, 30, 30]
    assert from_tensor(torch.zeros(0, 4, dtype=torch.int64), SIZE).size == 0


def test_from_tensor_errors() -> None:
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        from_tensor(torch.zeros(3, 3, dtype=torch.int64), SIZE)
    with pytest.raises(ValueError, match="integer"):
        from_tensor(torch.zeros(3, 4), SIZE)
    with pytest.raises(ValueError, match="x=9"):
        from_tensor(torch.tensor([[0, 9, 0, 0]]), SIZE)
    with pytest.raises(TypeError):
        from_tensor(np.zeros((1, 4), dtype=np.int64), SIZE)  # type: ignore[arg-type]


def test_concatenate_and_sort(ev: EventArray) -> None:
    c = concatenate([ev, ev[:2]])
    assert c.size == 6 and c.sensor_size == SIZE
    assert c["t"].tolist() == [50, 10, 30, 30, 50, 10]
    other = make_events([0], [0], [0], [0], (5, 5, 2))
    with pytest.raises(ValueError, match="different sensor sizes"):
        concatenate([ev, other])
    s = sort_by_time(ev)
    assert s["t"].tolist() == [10, 30, 30, 50]
    # stable: the two t=30 events keep their order (x=1 then x=2)
    assert s["x"].tolist() == [3, 1, 2, 0]
    already = sort_by_time(s)
    assert already is s
