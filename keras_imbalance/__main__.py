"""`python -m keras_imbalance`: the `keras-imbalance` command (`keras_imbalance_cli.run`).

The package, and TensorFlow with it, is imported before this runs; `keras-imbalance` and
`python -m keras_imbalance_cli` start faster and keep TensorFlow's start-up log lines off.
"""

import sys

from keras_imbalance_cli import run

sys.exit(run())
