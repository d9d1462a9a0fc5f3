"""DrapeNet foundations: the SMPL body model (through ``smplx``), AMASS motion, posed bodies.

Modules: :mod:`~nrtool.drape.body_model` (load a user's SMPL file safely, batched forward pass
with skinning transforms), :mod:`~nrtool.drape.amass` (read AMASS sequences, convert them to SMPL
72-d poses, resample, change axes, separate arms), :mod:`~nrtool.drape.sequence` (``nrtool body
pose``: posed meshes or a ``body-sequence`` artifact, written atomically) and
:mod:`~nrtool.drape.render` (headless contact sheets).
"""
