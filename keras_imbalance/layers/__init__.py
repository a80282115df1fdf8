"""Layers shared by the backbones and the models; each registered for serialization."""

from keras_imbalance.layers.convex_generator import ConvexGenerator
from keras_imbalance.layers.cosine_dense import CosineDense
from keras_imbalance.layers.cropped_conv_transpose import CroppedConv2DTranspose
from keras_imbalance.layers.instance_norm import InstanceNormalization
from keras_imbalance.layers.logit_adjustment import LogitAdjustment
from keras_imbalance.layers.logit_adjustment import logit_adjusted
from keras_imbalance.layers.reflection_padding import ReflectionPadding2D
from keras_imbalance.layers.shortcuts import SubsampleZeroPadShortcut
from keras_imbalance.layers.convex_autoencoder import ConvexDecoder
from keras_imbalance.layers.convex_autoencoder import GaussianConvexGenerator
from keras_imbalance.layers.image_history_pool import ImageHistoryPool
from keras_imbalance.layers.seed_state import SeedStateSaving
