import sys

from envs.mini.cli import main

sys.exit(main())
