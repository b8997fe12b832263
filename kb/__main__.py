"""python -m kb: the knowledge base's command line (see kb.cli)."""

import sys

from kb.cli import main

sys.exit(main())
