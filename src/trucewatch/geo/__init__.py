"""Geometry helpers: metric CRS choice, projection of arrays, the 0.1 degree grid."""
