"""`python -m hsm`."""

import sys

from hsm.cli import main

sys.exit(main())
