"""trucewatch: ceasefire monitoring and verification.

Data flows one way: ``ingest`` -> ``model`` -> ``fusion`` -> ``adjudication`` ->
``review`` -> ``reports``; ``storage`` and ``cli`` sit beside them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
