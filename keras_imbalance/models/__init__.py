
from keras_imbalance.models.m2m import M2m
