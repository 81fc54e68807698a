import sys

from palmjax.cli import main

sys.exit(main())
