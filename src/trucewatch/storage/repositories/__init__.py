"""Repositories by concern (evidence, observations, incidents, review, principals,
products) behind the protocols of :mod:`trucewatch.storage.protocols`."""
