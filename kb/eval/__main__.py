"""python -m kb.eval: see kb.eval.cli."""

import sys

from kb.eval.cli import main

sys.exit(main())
