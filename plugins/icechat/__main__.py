"""``python -m icechat`` runs the console script."""

import sys

from icechat.cli import main

sys.exit(main())
