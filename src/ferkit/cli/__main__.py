"""`python -m ferkit.cli`."""

import sys

from ferkit.cli import main

sys.exit(main())
