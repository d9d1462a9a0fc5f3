"""DrapeNet foundations: the SMPL body model (through ``smplx``), AMASS motion, posed bodies.

Modules: :mod:`~nrtool.drape.body_model` (load a user's SMPL file or rigged mesh safely, batched
forward pass with skinning transforms), :mod:`~nrtool.drape.amass` (read AMASS sequences, convert
them to SMPL 72-d poses, resample, detect and change the up axis, separate arms),
:mod:`~nrtool.drape.sequence` (``nrtool body pose``: posed meshes or a ``body-sequence``
artifact, written atomically), :mod:`~nrtool.drape.render` (headless contact sheets) and
:mod:`~nrtool.drape.filetypes` (what a wrongly given file is, for one-line errors).
"""
