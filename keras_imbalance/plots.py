"""Plots people would rather look at than read: per-class recall, confusion
matrices, generated samples. Needs matplotlib (`pip install keras-imbalance[plots]`);
every function writes a PNG and returns its path.
"""

import numpy as np


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'keras-imbalance[plots]'") from None
    return plt


def plot_per_class_recall(recalls, path, class_counts=None, title="Per-class recall on the balanced test split"):
    """Grouped bars: recall of each class (x) for each method (colour).

    Args:
        recalls: dict method -> per-class recall (C,) (e.g. the mean over seeds).
        path: PNG to write.
        class_counts: optional training counts, printed under the class ids.
    """
    plt = _pyplot()
    methods = list(recalls)
    c = len(next(iter(recalls.values())))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * c + 2), 4))
    for i, m in enumerate(methods):
        ax.bar(np.arange(c) + (i - (len(methods) - 1) / 2) * width, recalls[m], width, label=m)
    labels = [f"{k}\n(n={class_counts[k]})" if class_counts is not None else str(k) for k in range(c)]
    ax.set_xticks(np.arange(c), labels, fontsize=8)
    ax.set_xlabel("class (training count)" if class_counts is not None else "class")
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion_matrices(matrices, path, normalize=True):
    """One panel per method: the (C, C) confusion matrix, rows = true class.

    With `normalize=True` each row is divided by its count (so the diagonal
    is the per-class recall).
    """
    plt = _pyplot()
    methods = list(matrices)
    cols = min(4, len(methods))
    rows = int(np.ceil(len(methods) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(methods):]:
        ax.axis("off")
    for ax, m in zip(axes.flat, methods):
        cm = np.asarray(matrices[m], dtype=float)
        if normalize:
            cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
        c = cm.shape[0]
        if c <= 12:
            for i in range(c):
                for j in range(c):
                    if cm[i, j] >= 0.01:
                        ax.text(j, i, f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}", ha="center", va="center",
                                fontsize=6, color="white" if cm[i, j] > 0.6 else "black")
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_xticks(range(c))
        ax.set_yticks(range(c))
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_image_grid(images, path, row_labels=None, title=None, value_range=(0.0, 1.0)):
    """A grid of images (R, K, H, W, C): one row per class, K samples each."""
    plt = _pyplot()
    images = np.asarray(images, dtype=float)
    if images.ndim == 4:
        images = images[..., None]
    if images.ndim != 5:
        raise ValueError(f"images must be (rows, cols, H, W[, C]), got shape {images.shape}")
    low, high = value_range
    images = np.clip((images - low) / (high - low), 0, 1)
    r, k = images.shape[:2]
    fig, axes = plt.subplots(r, k, figsize=(0.9 * k + 0.8, 0.9 * r + (0.4 if title else 0)), squeeze=False)
    for i in range(r):
        for j in range(k):
            img = images[i, j]
            ax = axes[i, j]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0 and row_labels is not None:
                ax.set_ylabel(str(row_labels[i]), fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
