"""Backbones used by the papers, as factory functions like `keras.applications`.

Classifiers output logits by default (`classifier_activation=None`).
"""

from keras_imbalance.applications.small_cnn import SmallCNN
from keras_imbalance.applications.gamo import GAMO2PixDecoder, GAMOClassifier, GAMODiscriminator, GAMOFeatureExtractor, GAMOGenerator
