import sys

from discover.cli import main

sys.exit(main())
