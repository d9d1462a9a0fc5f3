"""Image metrics of rendered frames, computed as the NeRF literature does.

* PSNR: ``-10 log10(MSE)`` of [0, 1] RGB, per image, then averaged (as nerfstudio's
  ``ns-eval`` and Tab. 3.2-3.3 report it);
* SSIM: Gaussian window 11, sigma 1.5, population covariances, data range 1, averaged over the
  RGB channels (scikit-image with ``gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False``, the settings of the original SSIM and of nerfstudio);
* LPIPS (AlexNet): only when the ``lpips`` package and torchvision's AlexNet weights are already
  on this machine; nothing is downloaded, and otherwise the value is null with the reason.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"


def psnr_from_mse(mse: float) -> float:
    """PSNR (dB) of a mean squared error of [0, 1] images."""
    return float(-10 * math.log10(max(mse, 1e-12)))


def psnr_of(rendered: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB) of two (H, W, 3) images in [0, 1]."""
    return psnr_from_mse(float(np.mean((np.asarray(rendered, np.float64) - np.asarray(target, np.float64)) ** 2)))


def ssim_of(rendered: np.ndarray, target: np.ndarray) -> float:
    """SSIM of two (H, W, 3) images in [0, 1] (see the module docstring for the settings)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(rendered, np.float64), np.asarray(target, np.float64),
                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=1.0, channel_axis=-1))


def lpips_status() -> tuple[bool, str]:
    """Whether LPIPS can be computed here without downloading anything, and why not."""
    try:
        import lpips  # noqa: F401
    except ImportError:
        return False, "the lpips package is not installed (pip install lpips)"
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    if not (hub / ALEXNET_WEIGHTS).is_file():
        return False, f"torchvision's AlexNet weights ({hub / ALEXNET_WEIGHTS}) are not on this machine and nothing is downloaded"
    return True, ""


class LpipsMetric:
    """LPIPS-AlexNet of (H, W, 3) [0, 1] images; construct only when :func:`lpips_status` is True."""

    def __init__(self) -> None:
        import lpips

        self.model = lpips.LPIPS(net="alex", verbose=False).eval()

    def __call__(self, rendered: np.ndarray, target: np.ndarray) -> float:
        import torch

        def tensor(image: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None] * 2 - 1

        with torch.no_grad():
            return float(self.model(tensor(rendered), tensor(target)))


def summary(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and standard deviation (None when there are no values)."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    return float(np.mean(present)), float(np.std(present))
