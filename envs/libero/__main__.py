import sys

from envs.libero.cli import main

sys.exit(main())
