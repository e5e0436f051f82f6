"""The agreement as data: a YAML file plus GeoJSON geometry (docs/agreement-format.md)."""

from trucewatch.agreement.loader import CheckReport, check_agreement, load_agreement

__all__ = ["CheckReport", "check_agreement", "load_agreement"]
