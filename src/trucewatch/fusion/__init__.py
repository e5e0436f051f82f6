"""Multi-source fusion: every channel's observations as evidence (evidence) fused into incidents
with their uncertainty and independent corroboration (incidents)."""
