"""Long-tailed class-count profiles and the exact counts used in the papers."""

import math

import numpy as np

PAPER_PROFILES = {
    # GAMO (Mullick et al., ICCV 2019), Sec. 4.1: MNIST and Fashion-MNIST, IR 100.
    "gamo-mnist": [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40],
    "gamo-fashion-mnist": [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40],
    # GAMO Sec. 4.2: CIFAR10 and SVHN, IR 56.25.
    "gamo-cifar10": [4500, 2000, 1000, 800, 600, 500, 400, 250, 150, 80],
    "gamo-svhn": [4500, 2000, 1000, 800, 600, 500, 400, 250, 150, 80],
    # GAMO Sec. 4.3: five hair colours / five LSUN scenes.
    "gamo-celeba-small": [15000, 1500, 750, 300, 150],
    "gamo-celeba-large": [28000, 4000, 3000, 1500, 750],
    "gamo-lsun-small": [15000, 1500, 750, 300, 150],
    "gamo-lsun-large": [50000, 5000, 3000, 1500, 750],
    # M2m (Kim et al., CVPR 2020), supplementary: CelebA-5 after 1/20
    # subsampling. This is the authors' list; 2423 / 227 = 10.67, matching the
    # paper's stated rho ~ 10.7.
    "celeba-5": [424, 2423, 1499, 2078, 227],
}

# M2m / LDAM CIFAR-LT: the exponential profile from 5000 (CIFAR-10) or 500
# (CIFAR-100) images per class.
for _rho in (10, 50, 100):
    PAPER_PROFILES[f"cifar10-lt-{_rho}"] = ("exp", 5000, 10, _rho)
    PAPER_PROFILES[f"cifar100-lt-{_rho}"] = ("exp", 500, 100, _rho)


def long_tailed_counts(n_max, num_classes, imbalance_ratio, profile="exp"):
    """Per-class sample counts of a long-tailed training set, class 0 largest.

    Profiles:

    - `"exp"`: n_i = int(n_max * (1 / rho) ** (i / (C - 1))), the CIFAR-LT
      profile of Cao et al. (LDAM, 2019) and Kim et al. (M2m, 2020, Sec. 4).
    - `"step"`: the first floor(C / 2) classes get n_max, the rest
      int(n_max / rho) (Buda et al. 2018 step imbalance).

    Args:
        n_max: int >= 1, the count of the largest class.
        num_classes: int >= 1.
        imbalance_ratio: rho = n_max / n_min, a number >= 1.
        profile: `"exp"` or `"step"`.

    Returns:
        A list of `num_classes` ints.

    Example:

    >>> long_tailed_counts(100, 3, 100)
    [100, 10, 1]
    """
    if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or n_max < 1:
        raise ValueError(f"n_max must be an integer >= 1, got {n_max!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    try:
        rho = float(imbalance_ratio)
    except (TypeError, ValueError):
        raise ValueError(f"imbalance_ratio must be a number >= 1, got {imbalance_ratio!r}") from None
    if not math.isfinite(rho) or rho < 1:
        raise ValueError(f"imbalance_ratio must be a finite number >= 1, got {imbalance_ratio!r}")
    if profile == "exp":
        if num_classes == 1:
            counts = [int(n_max)]
        else:
            counts = [int(n_max * (1.0 / rho) ** (i / (num_classes - 1))) for i in range(num_classes)]
    elif profile == "step":
        n_major = num_classes // 2 if num_classes > 1 else 1
        counts = [int(n_max)] * n_major + [int(n_max / rho)] * (num_classes - n_major)
    else:
        raise ValueError(f"Unknown profile {profile!r}; expected 'exp' or 'step' (or use paper_counts(name))")
    if min(counts) < 1:
        raise ValueError(
            f"With n_max={n_max} and imbalance_ratio={imbalance_ratio}, the smallest class gets "
            f"{min(counts)} samples; every class needs at least 1 (raise n_max or lower the ratio)."
        )
    return counts


def paper_counts(name):
    """The exact per-class training counts of a setting from the papers.

    Names: see `PAPER_PROFILES` (e.g. `"gamo-mnist"`, `"gamo-cifar10"`,
    `"cifar10-lt-100"`, `"celeba-5"`). Counts are in class-index order.
    """
    if name not in PAPER_PROFILES:
        raise ValueError(f"Unknown paper profile {name!r}; known: {', '.join(sorted(PAPER_PROFILES))}")
    spec = PAPER_PROFILES[name]
    if isinstance(spec, tuple):
        profile, n_max, num_classes, rho = spec
        return long_tailed_counts(n_max, num_classes, rho, profile=profile)
    return list(spec)
