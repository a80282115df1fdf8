"""Backbones used by the papers, as factory functions like `keras.applications`.

Classifiers output logits by default (`classifier_activation=None`).
"""

from keras_imbalance.applications.autoencoder import ConvDecoder, ConvEncoder
from keras_imbalance.applications.cyclegan import ImbalanceCycleGANClassifier, PatchGANDiscriminator, ResnetGenerator
from keras_imbalance.applications.gamo import GAMO2PixDecoder, GAMOClassifier, GAMODiscriminator, GAMOFeatureExtractor, GAMOGenerator
from keras_imbalance.applications.lenet import LeNet
from keras_imbalance.applications.mlp import MLP
from keras_imbalance.applications.preact_resnet import PreActResNet18
from keras_imbalance.applications.resnet50 import ResNet50
from keras_imbalance.applications.resnet_cifar import CifarResNet, ResNet20, ResNet32, ResNet44, ResNet56, ResNet110
from keras_imbalance.applications.small_cnn import SmallCNN
from keras_imbalance.applications.polarity_gan import PolarityCritic, PolarityDecoder, PolarityEncoder, PolarityFeatureExtractor, PolarityGenerator
