import sys

from lightning_pde.cli import main

sys.exit(main())
