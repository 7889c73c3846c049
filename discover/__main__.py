import sys

from discover.cli.main import main

sys.exit(main())
