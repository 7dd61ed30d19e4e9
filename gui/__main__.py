"""``python -m gui [SCENARIO]``: open the desktop app."""

import sys

from gui.app import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
