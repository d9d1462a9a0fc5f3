"""DrapeNet foundations: the SMPL body model (through ``smplx``), AMASS motion, posed bodies.

Modules: :mod:`~nrtool.body.body_model` (load a user's SMPL file or rigged mesh safely, batched
forward pass with skinning transforms), :mod:`~nrtool.body.amass` (read AMASS sequences, convert
them to SMPL 72-d poses, resample, detect and change the up axis, separate arms),
:mod:`~nrtool.body.sequence` (``nrtool body pose``: posed meshes or a ``body-sequence``
artifact, written atomically), :mod:`~nrtool.body.render` (headless contact sheets) and
:mod:`~nrtool.body.filetypes` (what a wrongly given file is, for one-line errors).
"""
