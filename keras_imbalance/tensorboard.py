"""TensorBoard views of a balancer's game: generated samples and per-class recall as training goes.

`keras.callbacks.TensorBoard` already receives every player's loss through the
logs. What one watches in a GAN game on imbalanced data besides the losses is
what the generator makes and whether the rare classes are being recognised;
`BalancerTensorBoard` writes both, every `every_n_epochs` epochs and after the
last one, into `<log_dir>/balancer`:

- scalars `balanced_accuracy` and `per_class_recall/class_<c>` of the model's
  classifier (`model(x)`) on `validation_data`;
- an image `samples`: a grid with one row per class of what the balancer
  makes, chosen by what the model offers:
  - a convex generator (`GAMO`, `PolarityGAN` in pixel space): `samples_per_class`
    samples of each minority class from a fixed latent draw (`seed`), so the
    same z is followed from epoch to epoch;
  - a translator (`M2m`): seeds of the largest training class (from
    `validation_data`), then their translations into each minority class;
  - a CycleGAN (`ImbalanceCycleGAN`, `CycleGAN`): majority images a, G_AB(a),
    minority images b, G_BA(b) (from `validation_data`, labels by the model's
    `majority_class` / `minority_class`, else 0 / 1).

Images are min-max scaled per grid for display. Flat samples need
`image_shape`; a feature-space GAMO (its samples are features) gets no image.
The callback restores the model's seed-generator state after drawing, so a run
with it draws the same training random numbers as a run without.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from keras_imbalance.metrics import classification_report


def image_grid(rows, pad=1):
    """Tile a list of equally long image batches (n, H, W, C) into one (H', W', C) float32 image in [0, 1]."""
    rows = [np.asarray(r, np.float32) for r in rows]
    width = max(len(r) for r in rows)
    h, w, c = rows[0].shape[1:]
    grid = np.zeros((len(rows) * (h + pad) - pad, width * (w + pad) - pad, c), np.float32)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            grid[i * (h + pad): i * (h + pad) + h, j * (w + pad): j * (w + pad) + w] = image
    low, high = grid.min(), grid.max()
    return (grid - low) / (high - low) if high > low else np.zeros_like(grid)


class BalancerTensorBoard(keras.callbacks.Callback):
    """Writes generated samples and per-class recall to TensorBoard during `fit`.

    Args:
        log_dir: TensorBoard log directory (the summaries go to `<log_dir>/balancer`).
        validation_data: `(x, y)` numpy arrays with sparse labels: the per-class
            recall, and the seeds / images of the translation views. Optional for
            generator models (no recall then).
        every_n_epochs: write after every n-th epoch (and after the last).
        samples_per_class: columns of the sample grid (8).
        image_shape: (H, W, C) to draw flat samples as images; None for samples
            that already are images.
        seed: the fixed latent draw of the generator view.
        batch_size: prediction batch size for the recall.
    """

    def __init__(self, log_dir, validation_data=None, every_n_epochs=1, samples_per_class=8, image_shape=None,
                 seed=0, batch_size=256):
        super().__init__()
        try:
            import tensorboard  # noqa: F401  (tf.summary's implementation; TensorFlow does not install it)
        except ImportError as error:
            raise ImportError("BalancerTensorBoard needs TensorBoard: pip install 'keras-imbalance[tensorboard]'") from error
        if int(every_n_epochs) < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if int(samples_per_class) < 1:
            raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
        if validation_data is not None:
            x, y = validation_data
            x, y = np.asarray(x), np.asarray(y).reshape(-1)
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(f"validation_data needs as many labels as samples (got {len(x)} and {len(y)}), at least one")
            validation_data = (x, y)
        self.log_dir = os.fspath(log_dir)
        self.validation_data = validation_data
        self.every_n_epochs = int(every_n_epochs)
        self.samples_per_class = int(samples_per_class)
        self.image_shape = None if image_shape is None else tuple(image_shape)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "balancer"))

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every_n_epochs == 0 or (last is not None and epoch + 1 == last):
            self.write(epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write(self, step):
        """Write the recall scalars and the sample grid for `step` (an epoch index)."""
        writer = self._writer or tf.summary.create_file_writer(os.path.join(self.log_dir, "balancer"))
        with writer.as_default(step=int(step)):
            if self.validation_data is not None:
                report = self.per_class_report()
                tf.summary.scalar("balanced_accuracy", report["balanced_accuracy"])
                for c, recall in enumerate(report["per_class"]["recall"]):
                    tf.summary.scalar(f"per_class_recall/class_{c}", recall)
            grid = self.sample_grid()
            if grid is not None:
                tf.summary.image("samples", grid[None], max_outputs=1)
        writer.flush()

    def per_class_report(self):
        x, y = self.validation_data
        scores = np.asarray(self.model.predict(x, batch_size=self.batch_size, verbose=0))
        if scores.ndim == 2 and scores.shape[1] == 1:  # one logit: the binary classifier of ImbalanceCycleGAN
            scores = (scores[:, 0] > 0).astype(np.int64)
            num_classes = 2
        else:
            num_classes = scores.shape[-1]
        return classification_report(y, scores, num_classes)

    # Sample grids ------------------------------------------------------------

    def sample_grid(self):
        """The grid image (H, W, C) in [0, 1] for the model's kind, or None when it has nothing to draw."""
        model = self.model
        state = getattr(model, "seed_generator", None)
        saved = None if state is None else np.asarray(state.state)
        try:
            if hasattr(model, "translate_ab"):
                rows = self._cyclegan_rows()
            elif hasattr(model, "translator") and hasattr(model, "translate"):
                rows = self._translation_rows()
            elif hasattr(model, "generate") and getattr(model, "minority_classes", None):
                rows = self._generator_rows()
            else:
                rows = None
        finally:
            if saved is not None:
                state.state.assign(saved)
        rows = [r for r in (rows or []) if len(r)]
        if not rows:
            return None
        rows = [self._as_images(r) for r in rows]
        return None if any(r is None for r in rows) else image_grid(rows)

    def _as_images(self, batch):
        batch = np.asarray(batch, np.float32)
        if self.image_shape is not None:
            return batch.reshape((len(batch),) + self.image_shape)
        if batch.ndim == 4:
            return batch
        if batch.ndim == 3:
            return batch[..., None]
        return None

    def _generator_rows(self):
        if getattr(self.model, "feature_extractor", None) is not None:
            return None  # feature-space samples are not images
        n = self.samples_per_class
        return [self.model.generate(np.full(n, c, np.int32), seed=self.seed) for c in self.model.minority_classes]

    def _translation_rows(self):
        if self.validation_data is None:
            return None
        x, y = self.validation_data
        counts = np.asarray(self.model.class_counts)
        source = int(np.argmax(counts))
        seeds = x[y == source][: self.samples_per_class]
        if not len(seeds):
            return None
        rows = [seeds]
        for k in np.argsort(-counts)[1:]:
            rows.append(np.asarray(self.model.translate(seeds, int(k), source)))
        return rows

    def _cyclegan_rows(self):
        if self.validation_data is None:
            return None
        x, y = self.validation_data
        major, minor = getattr(self.model, "majority_class", 0), getattr(self.model, "minority_class", 1)
        a, b = x[y == major][: self.samples_per_class], x[y == minor][: self.samples_per_class]
        rows = []
        if len(a):
            rows += [a, np.asarray(self.model.translate_ab(a))]
        if len(b):
            rows += [b, np.asarray(self.model.translate_ba(b))]
        return rows
