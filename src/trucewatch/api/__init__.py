"""The REST API (FastAPI): ingest, queries, review, allegations, bulletins, agreement."""

from trucewatch.api.app import create_app

__all__ = ["create_app"]
