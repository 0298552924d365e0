"""Service plans, customer agreements, payment methods, subscriptions and usage."""
