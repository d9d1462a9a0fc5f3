"""DrapeNet's garment generative network: DGCNN encoder -> 32-d code -> CBN UDF decoder -> MeshUDF mesh.

Modules: :mod:`~nrtool.garments.config` (presets), :mod:`~nrtool.garments.encoder` (DGCNN),
:mod:`~nrtool.garments.decoder` (conditional-BatchNorm UDF decoder), :mod:`~nrtool.garments.data`
(garment folders, supervision), :mod:`~nrtool.garments.model` (network + checkpoint, top or
bottom), :mod:`~nrtool.garments.train`, :mod:`~nrtool.garments.meshing` (code -> MeshUDF mesh,
differentiable vertices), :mod:`~nrtool.garments.codes` (encode / decode / sample / interpolate,
PNG sheets), :mod:`~nrtool.garments.edit` (latent attribute editing). Meshing itself is
:mod:`nrtool.geometry.meshudf`.
"""
