#!/usr/bin/env python
"""Django's command-line utility, with database errors a user can cause turned into one line."""

import os
import sys


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routeoptimizer.settings")
    from routeoptimizer.cli import run

    return run(sys.argv)


if __name__ == "__main__":
    sys.exit(main())
