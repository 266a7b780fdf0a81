import sys

from dbtui.cli import main

sys.exit(main())
