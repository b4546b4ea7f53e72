"""Layout helpers: time-first <-> batch-first <-> time-last."""

from __future__ import annotations

import pytest
import torch

from spikeloom.export.layout import (
    batch_first_to_time_first,
    time_first_to_batch_first,
    time_first_to_time_last,
    time_last_to_time_first,
)
from spikeloom.layers import permute_layout


def test_layouts_move_the_right_axes_and_invert_each_other() -> None:
    x = torch.arange(3 * 2 * 4 * 5).reshape(3, 2, 4, 5)  # [T, B, C, N]
    bf = time_first_to_batch_first(x)
    assert bf.shape == (2, 3, 4, 5) and bf[1, 2, 3, 4] == x[2, 1, 3, 4]
    tl = time_first_to_time_last(x)
    assert tl.shape == (2, 4, 5, 3) and tl[1, 3, 4, 2] == x[2, 1, 3, 4]
    assert torch.equal(batch_first_to_time_first(bf), x)
    assert torch.equal(time_last_to_time_first(tl), x)
    assert torch.equal(tl, permute_layout(x, "TBCN", "BCNT"))  # same as the letter helper
    assert tl.data_ptr() == x.data_ptr()  # views, no copy
    seq = torch.randn(6, 7, 2)  # [T, B, N] round trip through time-last
    assert torch.equal(time_last_to_time_first(time_first_to_time_last(seq)), seq)


def test_layouts_refuse_tensors_without_time_and_batch() -> None:
    with pytest.raises(ValueError, match="time and a batch axis"):
        time_first_to_time_last(torch.zeros(4))
