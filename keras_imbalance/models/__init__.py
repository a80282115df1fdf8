"""The generative balancers: each a `keras.Model` whose `call(x)` is the classifier."""

from keras_imbalance.models.base import MultiPlayerModel
from keras_imbalance.models.gamo import GAMO
from keras_imbalance.models.gamo import GAMO2Pix
from keras_imbalance.models.gamo import GAMO2PixVAE
from keras_imbalance.models.convex_oversampling import ConvexOversamplerBase
from keras_imbalance.models.convex_oversampling import RefreshFeatureBank
from keras_imbalance.models.m2m import M2m
from keras_imbalance.models.cyclegan import CycleGAN
from keras_imbalance.models.imbalance_cyclegan import ImbalanceCycleGAN
from keras_imbalance.models.pixel_range import PixelRangeClassifier
from keras_imbalance.models.pixel_range import with_pixel_range

# Re-exported where the README, docs and tutorials have always found them.
from keras_imbalance.datasets.pairs import unpaired_dataset
from keras_imbalance.layers.image_history_pool import ImageHistoryPool

from keras_imbalance.models.polarity_gan import PolarityGAN
