"""`python -m mockserver.cli`: the `itsocr-mock` command."""

import sys

from mockserver.cli import main

sys.exit(main())
