"""Layers shared by the backbones and the models; each registered for serialization."""

from keras_imbalance.layers.cosine_dense import CosineDense
from keras_imbalance.layers.logit_adjustment import LogitAdjustment
from keras_imbalance.layers.logit_adjustment import logit_adjusted
