"""Post-hoc logit adjustment by the training prior (the TS baseline)."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_imbalance")
class LogitAdjustment(keras.layers.Layer):
    """Subtracts tau * log(prior) from logits: z'_j = z_j - tau * log pi_j.

    The "TS" baseline of ImbalanceCycleGAN (Sec. 4: "adjusting decision
    threshold by class frequency at prediction time"; Richard & Lippmann's
    prior correction): with tau = 1, softmax(z') is proportional to
    p(y | x) / pi_y, so a classifier trained on the imbalanced prior pi makes
    its decisions as if the classes were equally likely. This is the post-hoc
    logit adjustment of Menon et al. (2021), eq. (9); tau is their scaling.

    The prior is stored as a non-trainable weight, so the layer saves, reloads
    and exports (SavedModel) with the model it sits on.

    Args:
        class_counts: per-class training counts (C,), all > 0; the prior is
            counts / sum(counts).
        tau: scaling of the adjustment (1.0; 0 leaves logits unchanged).

    Shapes: (B, C) -> (B, C).
    """

    def __init__(self, class_counts, tau=1.0, **kwargs):
        super().__init__(**kwargs)
        counts = np.asarray(class_counts, np.float64)
        if counts.ndim != 1 or counts.size == 0:
            raise ValueError(f"class_counts must be a non-empty 1-D sequence, got shape {counts.shape}")
        if not np.all(np.isfinite(counts)) or np.any(counts <= 0):
            raise ValueError(f"class_counts must be finite and > 0 for every class, got {counts.tolist()}")
        self.class_counts = [int(c) if float(c).is_integer() else float(c) for c in counts.tolist()]
        self.tau = float(tau)
        self._log_prior = np.log(counts / counts.sum()).astype(np.float32)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(self.class_counts):
            raise ValueError(f"LogitAdjustment has {len(self.class_counts)} class counts but its input has {input_shape[-1]} logits")
        self.log_prior = self.add_weight(
            shape=(len(self.class_counts),),
            initializer=keras.initializers.Constant(self._log_prior),
            trainable=False,
            name="log_prior",
        )

    def call(self, inputs):
        return inputs - ops.cast(self.tau, inputs.dtype) * ops.cast(self.log_prior, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "class_counts": self.class_counts, "tau": self.tau}


def logit_adjusted(model, class_counts, tau=1.0, name=None):
    """Wraps a logits classifier: a functional model `model -> LogitAdjustment`.

    Args:
        model: a `keras.Model` (built, single input) outputting logits (B, C).
        class_counts: per-class training counts (C,).
        tau: adjustment scale.

    Returns:
        A functional `keras.Model` with the same input, outputs adjusted logits.
    """
    inputs = keras.Input(shape=model.input_shape[1:], dtype=model.inputs[0].dtype, name="images")
    outputs = LogitAdjustment(class_counts, tau=tau, name="logit_adjustment")(model(inputs))
    return keras.Model(inputs, outputs, name=name or f"{model.name}_logit_adjusted")
