import sys

from marketeq.cli import main

sys.exit(main())
