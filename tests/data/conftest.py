import pytest

from designer.data import builtin


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Every test draws into its own cache folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CNN_DESIGNER_CACHE", str(folder))
    return folder


@pytest.fixture
def small_sets(monkeypatch):
    """Built-in sets of 100 training and 50 validation images (balanced: 10 and 5 per class)."""
    monkeypatch.setattr(builtin, "TRAIN_SIZE", 100)
    monkeypatch.setattr(builtin, "VAL_SIZE", 50)
