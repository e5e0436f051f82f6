"""Analyst review: the queue, claims, decisions under the two-person rule, added incidents."""

from trucewatch.review.workflow import ReviewFigures, ReviewService

__all__ = ["ReviewFigures", "ReviewService"]
