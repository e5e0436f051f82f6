"""Adjudication: incidents against the agreement's rules."""
