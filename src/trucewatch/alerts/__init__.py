"""Alerts on candidate violations: a CAP 1.2 feed (:mod:`trucewatch.alerts.cap`) and signed
webhooks with retries and a dead-letter record (:mod:`trucewatch.alerts.webhooks`)."""
