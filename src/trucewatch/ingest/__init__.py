"""Ingest: one module per source, all behind :class:`trucewatch.ingest.base.SourceAdapter`."""
