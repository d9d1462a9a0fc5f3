"""A dense-grid NeRF for ScanNeRF's masking and benchmark (``nrtool mask``, ``nrtool nerf``).

``config`` (presets), ``views`` (posed frames from scans and NeRF datasets), ``rays``,
``boxes``, ``model`` (grids, sampler, renderer), ``train``, ``metrics``, ``evaluate``
(eval/render), ``mask`` and ``benchmark``.
"""
