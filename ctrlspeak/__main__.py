"""``python -m ctrlspeak``: the command line, as the ``ctrlspeak`` script runs it."""
from ctrlspeak.cli import main
import sys
sys.exit(main())
