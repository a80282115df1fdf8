"""The `keras-imbalance` command.

Sub-commands so far:

- `demo`: long-tailed digits, a small ERM classifier trained for a few
  epochs, and its classification report on the balanced test split.
"""

import argparse
import sys


def _demo(args):
    import keras
    import numpy as np

    from keras_imbalance import applications
    from keras_imbalance import datasets
    from keras_imbalance import metrics

    keras.utils.set_random_seed(args.seed)
    print(f"[keras-imbalance] loading scikit-learn digits (8x8 images, 10 classes)")
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(seed=args.seed)
    counts = datasets.long_tailed_counts(120, 10, args.imbalance_ratio, profile="exp")
    x_lt, y_lt = datasets.make_imbalanced(x_train, y_train, counts, seed=args.seed)
    print(f"[keras-imbalance] long-tailed training set, imbalance ratio {args.imbalance_ratio}: counts {counts}")
    print(f"[keras-imbalance] balanced test set: {len(y_test)} images ({np.bincount(y_test).tolist()} per class)")
    model = applications.SmallCNN(input_shape=x_lt.shape[1:], num_classes=10)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy", metrics.BalancedAccuracy(10)],
    )
    print(f"[keras-imbalance] training ERM ({model.name}, {model.count_params():,} parameters) for {args.epochs} epochs")
    model.fit(datasets.to_dataset(x_lt, y_lt, batch_size=32, seed=args.seed), epochs=args.epochs, verbose=2)
    report = metrics.classification_report(y_test, model.predict(x_test, verbose=0), 10, class_counts=counts)
    print(metrics.format_report(report, title="ERM on long-tailed digits, balanced test split"))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-imbalance", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="ERM on long-tailed digits, then the classification report")
    demo.add_argument("--epochs", type=int, default=15)
    demo.add_argument("--imbalance-ratio", type=float, default=50.0)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
