"""Fusion: from observations to what they mean (expected fires, war-related fires, incidents)."""
