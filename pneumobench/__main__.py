"""``python -m pneumobench``: the ``pneumobench`` command."""

import os
import sys

from pneumobench.commands.main import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
sys.exit(main())
