import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_HOME", os.path.join(os.path.dirname(__file__), ".keras_home_unused"))

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_keras_session():
    # free_memory=False skips a 0.2 s gc.collect per test.
    keras.utils.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield
