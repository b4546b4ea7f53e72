"""The exceptions of spikeloom, in one place.

Every error carries enough context to act on (the file, the key, the valid choices). All derive
from :class:`SpikeloomError` and from the built-in class a caller would expect (``ValueError``
for bad values, ``FileNotFoundError`` for missing data, ...), so existing ``except`` clauses
keep working.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = [
    "SpikeloomError",
    "UnknownNameError",
    "ConfigError",
    "TrainingError",
    "BackendError",
    "NonFiniteError",
    "EventFileError",
    "EventFileWarning",
    "MissingDataError",
    "ConvertError",
    "ExportError",
]


class SpikeloomError(Exception):
    """Base class of all spikeloom errors."""


class UnknownNameError(SpikeloomError, ValueError):
    """A name is not in a registry; the message lists the registered names.

    Attributes:
        kind: what was looked up (``"model"``, ``"dataset"``, ...).
        name: the name asked for.
        choices: the registered names.
    """

    def __init__(self, kind: str, name: object, choices: Iterable[str]) -> None:
        self.kind, self.name, self.choices = kind, name, list(choices)
        super().__init__(
            f"unknown {kind} {name!r}; choose one of: {', '.join(self.choices) or '(none)'}"
        )


class ConfigError(SpikeloomError, ValueError):
    """A configuration value or key is wrong; the message says which and what to do."""


class TrainingError(SpikeloomError, RuntimeError):
    """Training cannot continue (e.g. the loss became NaN); the message says what to do."""


class NonFiniteError(SpikeloomError, FloatingPointError):
    """A layer received NaN or infinite input; ``module`` is the layer (the trainer names it)."""

    def __init__(self, module: object, message: str) -> None:
        self.module = module
        super().__init__(message)


class BackendError(SpikeloomError, ValueError):
    """An operator backend is unknown or cannot run here (see ``spikeloom.ops``)."""


class EventFileError(SpikeloomError, ValueError):
    """A file is damaged, truncated or not in the expected format.

    Attributes:
        path: the file.
        offset: byte offset of the problem (``None`` when not meaningful, e.g. inside a zip).
        detail: what was found and what was expected.
    """

    def __init__(self, path: str | os.PathLike[str], offset: int | None, detail: str) -> None:
        self.path = str(path)
        self.offset = offset
        self.detail = detail
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{self.path}{where}: {detail}")


class EventFileWarning(UserWarning):
    """Emitted by ``strict=False`` readers that return only the valid prefix of a file."""


class MissingDataError(SpikeloomError, FileNotFoundError):
    """Dataset files are missing; the message lists what is expected and where it comes from."""


class ConvertError(SpikeloomError, RuntimeError):
    """A problem with the inputs or the output folder of a conversion (message says what to do)."""


class ExportError(SpikeloomError, ValueError):
    """A model or graph cannot be exported or imported faithfully (NIR, ONNX, peer weights);
    the message names the layer or node and lists what is supported."""
