"""The mutation list stays applicable: each mutant's snippet is found exactly once, its tests exist."""

import os

import pytest

from tests.mutation import run
from tests.mutation.mutants import MUTANTS


def test_mutant_ids_are_unique():
    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.id)
def test_mutant_applies_to_the_current_code(mutant):
    assert run.occurrences(mutant) == 1, (
        f"{mutant.id}: the original snippet must occur exactly once in {mutant.file}; "
        "the code changed, so update tests/mutation/mutants.py"
    )
    assert mutant.original != mutant.mutated
    for target in mutant.tests:
        assert os.path.exists(os.path.join(run.ROOT, target.split("::")[0])), target
