"""Organizations, their members, and everything that keeps each organization's data its own."""
