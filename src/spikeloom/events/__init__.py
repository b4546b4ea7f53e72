"""Event streams: the event-array type, file readers/writers, transforms and ODG conversion."""

from .core import EVENT_DTYPE

__all__ = ["EVENT_DTYPE"]
