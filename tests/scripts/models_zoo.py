"""Tiny, seeded method models and data for the subprocess scripts (distributed, resume, determinism).

Every builder returns an adapted model; `compile_model` compiles it with
the optimizers the scripts use. Shapes are tiny so a few steps take < 1 s.
"""

import keras
import numpy as np

from keras_imbalance import applications
from keras_imbalance.models import GAMO, GAMO2Pix, M2m, CycleGAN, ImbalanceCycleGAN, PolarityGAN

COUNTS = [24, 10, 6]
BINARY_COUNTS = [24, 10]  # CycleGAN / ImbalanceCycleGAN: majority A = class 0, minority B = class 1
NUM_CLASSES = 3
SHAPE = (8, 8, 1)
METHODS = ("gamo_pixel", "gamo_bounded", "gamo_feature", "gamo2pix", "m2m", "m2m_compact", "cyclegan", "icg_aug", "icg_alt", "polarity")
BINARY = ("cyclegan", "icg_aug", "icg_alt")


def data_for(method, seed=0):
    """The zoo's data for `method`: 3 classes, or the binary pair of the CycleGAN family."""
    return data(seed, BINARY_COUNTS) if method in BINARY else data(seed)


def fit_data(method, x, y, batch_size):
    """What `model.fit` takes for `method`: an (x, y) dataset, or for CycleGAN the (a, b) arrays (fit(a, b, batch_size))."""
    import tensorflow as tf

    if method == "cyclegan":  # CycleGAN.fit pairs the two arrays itself
        return x[y == 0], x[y == 1]
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=True)


def _cycle_gan(seed):
    def gen(name):
        return applications.ResnetGenerator(SHAPE, filters=4, num_residual_blocks=0, name=name)

    def disc(name):
        return applications.PatchGANDiscriminator(SHAPE, filters=4, num_layers=1, name=name)

    # A pool of 4 < the images per epoch, so it fills and then swaps within the run.
    return CycleGAN(gen("g_ab"), gen("g_ba"), disc("d_a"), disc("d_b"), pool_size=4, value_range=(-1.0, 1.0), seed=seed)


def data(seed=0, counts=COUNTS):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)]).astype("int64")
    # Class-dependent means so the classifiers have something to learn.
    x = rng.uniform(-1, 1, (len(y), *SHAPE)).astype("float32") * 0.5
    x += (y[:, None, None, None] - 1).astype("float32") * 0.3
    perm = rng.permutation(len(y))
    # In [0, 1], the package's image convention, which every method's fit checks (docs/errors.md).
    return (np.clip(x[perm], -1, 1) + 1) / 2, y[perm]


def _dense_net(name):
    inputs = keras.Input(SHAPE)
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(16, activation="relu", name="dense1")(h)
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, name="logits")(h), name=name)


def build(method, x, y, max_bank_size=None):
    keras.utils.set_random_seed(7)
    if method == "gamo_bounded":  # pixel space, banks of 10 and 6 samples, subsets of 4 per step
        return build("gamo_pixel", x, y, max_bank_size=4)
    if method == "gamo_pixel":
        model = GAMO(
            applications.GAMOClassifier(SHAPE, NUM_CLASSES, hidden_units=(16, 8)),
            applications.GAMODiscriminator(SHAPE, NUM_CLASSES, hidden_units=(8,)),
            generator=None if max_bank_size is None else applications.GAMOGenerator(
                np.bincount(y).tolist(), SHAPE, latent_dim=4, max_bank_size=max_bank_size, seed=3
            ),
            latent_dim=4,
            seed=1,
        )
        return model.adapt(x, y)
    if method in ("gamo_feature", "gamo2pix"):
        model = GAMO(
            applications.GAMOClassifier((8,), NUM_CLASSES, hidden_units=(8,)),
            applications.GAMODiscriminator((8,), NUM_CLASSES, hidden_units=(8,)),
            feature_extractor=applications.GAMOFeatureExtractor(SHAPE, filters=4, feature_dim=8),
            latent_dim=4,
            seed=2,
        ).adapt(x, y)
        if method == "gamo_feature":
            return model
        return GAMO2Pix.from_gamo(model, latent_dim=3, filters=4, seed=0)
    if method in ("m2m", "m2m_compact"):
        g = _dense_net("translator")
        # gamma = 0 with the probability test: every slot whose Bernoulli
        # draw succeeds is accepted, so translations really enter the batch.
        # m2m_compact translates only those candidates (a different number of rows per replica).
        return M2m(_dense_net("f"), g, class_counts=np.bincount(y).tolist(), beta=0.9, gamma=0.0,
                   acceptance_criterion="probability", attack_steps=2, seed=1,
                   translated_positions="candidates" if method == "m2m_compact" else "all")
    if method == "cyclegan":
        return _cycle_gan(seed=1)
    if method in ("icg_aug", "icg_alt"):
        # dropout=0: a Dropout layer draws its mask per replica (like per-replica
        # BN statistics, a property of the user's network, not of the method).
        classifier = applications.ImbalanceCycleGANClassifier(SHAPE, 2, filters=4, num_layers=1, dense_units=(8,),
                                                               dropout=0.0)
        model = ImbalanceCycleGAN(classifier, _cycle_gan(seed=2), mode=method[4:], switch_every=1, seed=1)
        return model.adapt(x, y)
    if method == "polarity":
        model = PolarityGAN(
            applications.GAMOClassifier(SHAPE, NUM_CLASSES, hidden_units=(16, 8)),
            applications.PolarityCritic(SHAPE, NUM_CLASSES, hidden_units=(8,)),
            encoder=applications.PolarityEncoder(SHAPE, latent_dim=4, hidden_units=8),
            latent_dim=4, hidden_units=(8, 4), autoencoder_epochs=1, critic_steps=2, seed=1,
        ).adapt(x, y)
        # Stage 1 here, so the weights a test starts from include G's initialization.
        model.pretrain_autoencoder(batch_size=8)
        return model
    raise ValueError(method)


def compile_model(model, lr=1e-2, optimizer="adam"):
    """Adam(lr, beta_1=0.5) per player (the paper's family), or SGD(lr) with `optimizer="sgd"`."""
    def opt():
        if optimizer == "sgd":
            return keras.optimizers.SGD(lr)
        return keras.optimizers.Adam(lr, beta_1=0.5)

    if isinstance(model, M2m):
        model.compile(optimizer=opt())
    elif isinstance(model, GAMO2Pix):
        model.compile(vae_optimizer=opt())
    elif isinstance(model, (CycleGAN, ImbalanceCycleGAN)):
        model.compile(**{f"{name}_optimizer": opt() for name in model.player_names})
    elif isinstance(model, PolarityGAN):
        model.compile(classifier_optimizer=opt(), generator_optimizer=opt(), critic_optimizer=opt(),
                      feature_extractor_optimizer=opt())
    else:
        model.compile(classifier_optimizer=opt(), generator_optimizer=opt(), discriminator_optimizer=opt(),
                      feature_extractor_optimizer=opt())
    return model


def weights(model):
    """{variable path: numpy} of every model variable (players, banks, optimizers' slots excluded)."""
    return {f"{i}:{v.name}": np.asarray(v) for i, v in enumerate(model.weights)}


def optimizer_variables(model):
    out = {}
    names = model.active_players() if hasattr(model, "active_players") else None
    opts = [(n, getattr(model, f"{n}_optimizer", None)) for n in names] if names else [("optimizer", model.optimizer)]
    for n, opt in opts:
        if opt is not None:
            for i, v in enumerate(opt.variables):
                out[f"{n}/{i}:{v.name}"] = np.asarray(v)
    return out


def seed_state(model):
    return np.asarray(model.seed_generator.state)


# SGD learning rates of the distributed comparisons (tests/scripts/mirrored.py,
# multi_worker.py). The CycleGAN's generator gradients are large at init (|g|
# up to ~9: instance norm over 2 x 2 maps of tiny 8 x 8 images); with SGD 0.05
# the two-player game amplifies 1e-6 rounding differences into 1e-1 within 6
# steps (the one-step gradients of 1 and 2 replicas agree to 5e-6). Smaller
# rates keep it in the regime where the comparison measures the computation,
# not the chaos.
COMPARISON_LR = {"cyclegan": 2e-4, "icg_alt": 1e-3}


def comparison_lr(method):
    return COMPARISON_LR.get(method, 0.05)
