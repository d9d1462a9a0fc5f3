"""Network blocks shared by the systems: positional encoding, Linear-BatchNorm-ReLU stacks,
BatchNorm re-estimation, code-conditioned linear layers. Torch only; no system imports another system's blocks."""

from nrtool.nn.blocks import (
    linear_bn_relu,
    positional_encoding,
    recalibrate_batchnorm,
    split_linear,
)

__all__ = ["linear_bn_relu", "positional_encoding", "recalibrate_batchnorm", "split_linear"]
