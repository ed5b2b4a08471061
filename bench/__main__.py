"""Entry point: `python -m bench [--quick] [--json PATH]` from the project root."""

import sys

from bench.cli import main

sys.exit(main())
