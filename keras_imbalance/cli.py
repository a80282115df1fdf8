"""The commands of `keras-imbalance` (compare, fit, export, presets, predict, demo; examples in `keras_imbalance_cli`).

The parser, the argument checks and the error path are in the top-level
module `keras_imbalance_cli` (standard library only, so `--help` and usage
errors answer without importing TensorFlow); `run(args)` here is called with
its checked arguments. A runtime failure is raised as `CommandError`,
`ValueError` or `OSError` (exit code 1), an argument only the library can
check (an unknown preset) as `UsageError` (exit code 2).
"""

import json
import os
import sys

from keras_imbalance_cli import DEMO_METHODS
from keras_imbalance_cli import CommandError
from keras_imbalance_cli import UsageError
from keras_imbalance_cli import build_parser  # noqa: F401  (public here before the parser moved)


def _say(message):
    print(f"[keras-imbalance] {message}", flush=True)


def _compare(args):
    from keras_imbalance import compare

    compare.run_compare(
        dataset=args.dataset, methods=args.methods, seeds=args.seeds, epochs=args.epochs, batch_size=args.batch_size,
        profile=args.profile, imbalance_ratio=args.imbalance_ratio, n_max=args.n_max, backbone=args.backbone,
        out=args.out, data_path=args.data_path, image_size=args.image_size, test_per_class=args.test_per_class,
        verbose=args.verbose, plots=not args.no_plots, fresh=args.fresh, log=lambda m: print(m, flush=True),
        classifier_optimizer=args.classifier_optimizer, paper_settings=args.paper_settings, augment=not args.no_augment,
        select=args.select, mixed_precision=args.mixed_precision, jit_compile=args.jit_compile,
        tensorboard=args.tensorboard, classes=args.classes, save_models=args.save_models,
    )
    _say(f"wrote {os.path.join(args.out, 'report.md')}, results.json and plots")
    return 0


def _fit(args):
    from keras_imbalance import compare
    from keras_imbalance import datasets
    from keras_imbalance import metrics
    from keras_imbalance import recipes
    from keras_imbalance import serving
    from keras_imbalance.models import with_pixel_range

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
    # The balanced test split is the only held-out data of `fit`: TensorBoard displays its recall, nothing selects on it.
    monitor = None if args.tensorboard is None else compare.tensorboard_callbacks(args.tensorboard, (x_test, y_test))
    model, run = compare.train_and_score(recipe, compare.backbone_factory(backbone), x, y, x_test, y_test, counts,
                                         epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                         verbose=args.verbose, method=args.method, training=training,
                                         mixed_precision=args.mixed_precision, jit_compile=args.jit_compile,
                                         callbacks=monitor)
    report = run["report"]
    print(metrics.format_report(report, title=f"{args.method} on the balanced test split"))
    os.makedirs(args.out, exist_ok=True)
    # The loaders give [0, 1]: saved with it, the .keras file takes raw uint8 pixels like the SavedModel.
    model = with_pixel_range(model, (0.0, 1.0))
    model.save(os.path.join(args.out, "model.keras"))
    version_dir = serving.export_for_serving(model, os.path.join(args.out, "serving"), overwrite=True)
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({"method": args.method, "dataset": args.dataset, "class_counts": counts, "class_names": names,
                   "backbone": backbone, "backbone_requested": args.backbone, "epochs": args.epochs, "seed": args.seed,
                   "report": report, "classifier_training": training.get_config(),
                   "mixed_precision": "mixed_float16" if args.mixed_precision else None, "jit_compile": args.jit_compile,
                   "command": " ".join(["keras-imbalance"] + sys.argv[1:])}, f, indent=1)
    _say(f"saved {os.path.join(args.out, 'model.keras')} and the SavedModel {version_dir}")
    return 0


def _export(args):
    from keras_imbalance import serving

    path = args.run_dir
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    model = _load_model(path)
    out = serving.export_for_serving(model, args.to, version=args.version, input_dtype=args.input_dtype,
                                     value_range=args.value_range and tuple(args.value_range), overwrite=args.overwrite)
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
            data = presets.TEST_SPLIT_LOADERS.get(meta.get("test_split", {}).get("loader"), "?")
            bacc = meta.get("metrics", {}).get("balanced_accuracy")
            across = meta.get("across_seeds", {}).get("balanced_accuracy")
            line = f"{name:30s} {meta.get('method', '?'):18s} {data:12s} "
            if bacc is not None:
                line += f"balanced accuracy {bacc:.4f}"
            if across and across.get("ci_low") is not None:
                line += (f"  ({across['n']} seeds: {across['mean']:.4f} [{across['ci_low']:.4f}, "
                         f"{across['ci_high']:.4f}])")
            print(line.rstrip())
        return 0
    _check_preset(presets, args.name, "argument NAME: unknown preset")
    print(json.dumps(presets.metadata(args.name), indent=2))
    return 0


def _load_model(path):
    """The model in the `.keras` file `path` (safe mode); CommandError naming the file when it does not load."""
    import keras_imbalance  # noqa: F401  (registers the model classes)
    from keras_imbalance.model_files import load_keras_file

    try:
        return load_keras_file(path, safe_mode=True)
    except Exception as error:  # zipfile.BadZipFile, ValueError, TypeError, ...: whatever Keras raises for a bad file
        raise CommandError(f"{path} does not load as a Keras model ({type(error).__name__}: {error})") from error


def _check_preset(presets, name, what):
    """UsageError unless `name` is a preset; `what` starts the message ("argument NAME: unknown preset")."""
    known = presets.list_presets()
    if name not in known:
        raise UsageError(f"{what} {name!r}; known presets: {', '.join(known) or '(none)'} in {presets.default_root()}")


def _load_image_files(paths, shape):
    """The image files as raw uint8 pixels (B, H, W, C), resized to `shape`; the model scales them itself."""
    from keras_imbalance import datasets

    try:
        return datasets.load_image_files(paths, shape, value_range=None)
    except (OSError, ValueError) as error:  # the file is named in the message
        raise CommandError(f"{error}") from error


def _predict(args):
    import numpy as np

    from keras_imbalance import presets
    from keras_imbalance.models.pixel_range import raw_pixel_input

    if os.path.isfile(args.model):
        model = _load_model(args.model)
    else:
        _check_preset(presets, args.model, "argument MODEL: no file or preset named")
        model = presets.load(args.model)
    classifier = getattr(model, "classifier", None) or model
    shape = tuple(classifier.input_shape[1:])
    # Raw pixels: the model scales them to the pixel range it carries (models.pixel_range).
    x = raw_pixel_input(model, _load_image_files(args.images, shape))
    logits = np.asarray(model.predict(x, verbose=0))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for path, p in zip(args.images, probs):
        print(f"{path}: class {int(p.argmax())} (p={p.max():.3f})  probabilities " + " ".join(f"{v:.3f}" for v in p))
    return 0


def _demo(args):
    from keras_imbalance import compare

    _say("demo: compare baselines and methods on long-tailed scikit-learn digits (8x8, 10 classes, imbalance ratio 50)")
    compare.run_compare(dataset="digits", methods=list(DEMO_METHODS), seeds=args.seeds, epochs=args.epochs, batch_size=32,
                        imbalance_ratio=args.imbalance_ratio, out=args.out, verbose=0, log=lambda m: print(m, flush=True))
    _say(f"report, results.json and plots in {args.out}")
    return 0


_COMMANDS = {"compare": _compare, "fit": _fit, "export": _export, "presets": _presets, "predict": _predict, "demo": _demo}


def run(args):
    """Run the command of `args` (parsed and checked by `keras_imbalance_cli.main`); returns the exit code."""
    return _COMMANDS[args.command](args)


def main(argv=None):
    """`keras_imbalance_cli.main(argv)`, or its console entry `run()` without `argv`.

    Kept so that `keras_imbalance.cli.main` (and a console script installed before the entry point moved to
    `keras_imbalance_cli:run`) still works.
    """
    import keras_imbalance_cli

    return keras_imbalance_cli.run() if argv is None else keras_imbalance_cli.main(argv)
