"""`python -m reelay.devstack up`: the local stack (`make up`)."""

import sys

from reelay.devstack.console import main

sys.exit(main())
