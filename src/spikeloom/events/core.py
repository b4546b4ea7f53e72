"""The event-array type shared by every reader, transform and dataset.

An event stream is a numpy structured array with the fields

==========  =========  ==========================================================
field       dtype      meaning
==========  =========  ==========================================================
``x``       ``<u2``    column (0 .. W-1)
``y``       ``<u2``    row (0 .. H-1)
``p``       ``u1``     polarity: 1 = ON (brightening), 0 = OFF (darkening)
``t``       ``<i8``    timestamp in microseconds
==========  =========  ==========================================================

:class:`EventArray` is an ``ndarray`` subclass of that dtype that also carries the
sensor size ``(W, H, P)``.
"""

from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("p", "u1"), ("t", "<i8")])
