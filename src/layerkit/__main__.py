"""``python -m layerkit``: the ``layerkit`` command."""

import sys

from layerkit.cli import main

sys.exit(main())
