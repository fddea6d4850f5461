"""``python -m reco.cli``: the ``reco`` command."""

import sys

from reco.cli import main

sys.exit(main())
