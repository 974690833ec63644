"""``python -m neuralsmith`` runs the command line."""

import sys

from neuralsmith.cli import main

sys.exit(main())
