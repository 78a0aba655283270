"Shared pytest fixtures: the repository root and the offline docs tool."
import importlib.util, os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault('HF_HUB_OFFLINE', '1')


@pytest.fixture(scope='session')
def root(): return ROOT


@pytest.fixture(scope='session')
def nbdocs():
    "tools/nbdocs.py as a module."
    spec = importlib.util.spec_from_file_location('nbdocs', ROOT/'tools'/'nbdocs.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes tens of seconds (still part of the default run and of CI)')
    config.addinivalue_line('markers', 'numerics: compares results computed twice (reload, resume, export, batch composition, a trained '
                                       "model's claims); CI runs these again with the CPU kernels forced elsewhere (bash tools/dev.sh test-forced)")
