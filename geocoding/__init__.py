"""The geocoding cache and the service in front of the providers."""
