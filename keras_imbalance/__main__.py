import sys

from keras_imbalance.cli import main

sys.exit(main())
