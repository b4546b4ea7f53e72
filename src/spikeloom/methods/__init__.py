"""Training methods (``spikeloom train --method NAME``) and their registry.

=================  ==========================================================================
name (``METHODS``)  method
=================  ==========================================================================
``"stbp"``         surrogate-gradient BPTT (spatio-temporal backpropagation), the default
``"dsr"``          DSR (Meng et al., CVPR 2022): :mod:`spikeloom.methods.dsr`
``"joint-asnn"``   Joint A-SNN (Guo et al., Pattern Recognition 2023):
                   :mod:`spikeloom.methods.joint_asnn`
=================  ==========================================================================

A method plugs into the trainer through hooks (see :class:`TrainingMethod`); register your
own with :func:`register_method`.
"""

from .registry import METHODS, TrainingMethod, get_method, register_method  # noqa: I001
from . import dsr  # noqa: F401  (registers "dsr" and the DSR neurons)
from . import joint_asnn  # noqa: F401  (registers "joint-asnn" and joint_resnet18)

__all__ = ["METHODS", "TrainingMethod", "register_method", "get_method"]
