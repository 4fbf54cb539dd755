"""``python -m alkit``: see ``alkit.cli``."""

import sys

from alkit.cli import main

sys.exit(main())
