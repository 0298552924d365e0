"""Geocoding cache (plan M017)."""
