"""`python -m faced` runs the command line (see faced.cli)."""

import sys

from faced.cli import main

sys.exit(main())
