import sys

from glassbox_cli.main import main

sys.exit(main())
