"""``python -m bot`` is ``poam-bot``."""

import sys

from bot.cli import main

sys.exit(main())
