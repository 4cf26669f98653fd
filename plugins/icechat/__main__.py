"""``python -m icechat`` runs the console script."""

import sys

from icechat.commands import main

sys.exit(main())
