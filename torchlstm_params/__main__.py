"""``python -m torchlstm_params``."""

import sys

from .cli import main

sys.exit(main())
