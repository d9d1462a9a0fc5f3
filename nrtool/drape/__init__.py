"""Draping: garments skinned onto moving bodies, trained by physics alone (DrapeNet, issue 13)."""
