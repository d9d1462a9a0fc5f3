"""Network blocks shared by the systems: positional encoding, Linear-BatchNorm-ReLU stacks,
BatchNorm re-estimation. Torch only; no system imports another system's blocks."""

from nrtool.nn.blocks import linear_bn_relu, positional_encoding, recalibrate_batchnorm

__all__ = ["linear_bn_relu", "positional_encoding", "recalibrate_batchnorm"]
