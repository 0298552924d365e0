"""Billing models (plan M010-M014)."""
