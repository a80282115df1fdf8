"""Layers shared by the backbones and the models; each registered for serialization."""

from keras_imbalance.layers.cosine_dense import CosineDense
from keras_imbalance.layers.convex_generator import ConvexGenerator
