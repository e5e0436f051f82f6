"""Repositories by concern (evidence, observations, incidents, review, principals, products)\nbehind the protocols of :mod:`trucewatch.storage.protocols`."""
