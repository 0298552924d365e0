"""Customers, drivers, routes and route stops: the legacy tables, now owned by organizations."""
