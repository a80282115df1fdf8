"""keras-imbalance: deep learning on class-imbalanced data with Keras 3.

Sub-packages:

- `keras_imbalance.datasets`: long-tailed profiles, loaders, tf.data pipelines.
- `keras_imbalance.metrics`: balanced accuracy, geometric mean, reports.
- `keras_imbalance.applications`: the backbones the papers use.
- `keras_imbalance.layers`: layers shared by backbones and models.
- `keras_imbalance.models`: the generative balancers (GAMO, M2m, ...).
- `keras_imbalance.baselines`, `losses`, `callbacks`, `optimizers`: the baselines the papers compare against.
- `keras_imbalance.serving`, `presets`: TF Serving export and pretrained balancers.
- `keras_imbalance.reproducibility`: `set_seed`, epoch-seeded (resumable) input pipelines.
- `keras_imbalance.tensorboard`: `BalancerTensorBoard`, generated samples and per-class recall in TensorBoard.
- `keras_imbalance.samplers` (needs imbalanced-learn; import it explicitly): a trained balancer as a `fit_resample` sampler.
"""

__version__ = "0.1.0"

from keras_imbalance import applications  # noqa: E402
from keras_imbalance import baselines  # noqa: E402
from keras_imbalance import callbacks  # noqa: E402
from keras_imbalance import datasets  # noqa: E402
from keras_imbalance import layers  # noqa: E402
from keras_imbalance import losses  # noqa: E402
from keras_imbalance import metrics  # noqa: E402
from keras_imbalance import models  # noqa: E402
from keras_imbalance import optimizers  # noqa: E402
from keras_imbalance import plots  # noqa: E402
from keras_imbalance import presets  # noqa: E402
from keras_imbalance import reproducibility  # noqa: E402
from keras_imbalance import serving  # noqa: E402
from keras_imbalance import tensorboard  # noqa: E402
