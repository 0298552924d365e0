"""RouteOptimizer SaaS: the Django project package (settings, URLs, database selection)."""
