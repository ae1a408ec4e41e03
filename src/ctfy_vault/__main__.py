"""``python -m ctfy_vault`` runs the command line."""

import sys

from ctfy_vault.cli import main

sys.exit(main())
