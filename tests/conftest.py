"Shared pytest fixtures: the repository root, the offline docs tool, and the hostile files every entry point is tested with."
import importlib.util, os, struct, sys
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


@pytest.fixture(scope='session')
def hostile(tmp_path_factory)->Path:
    """Hostile files: a decompression bomb, a huge picture in a small file, garbage named .png, a WAV header claiming 10 minutes,
    an mp4 and its first half."""
    import numpy as np, soundfile as sf
    from PIL import Image
    from mmsent.data import write_test_mp4
    h = tmp_path_factory.mktemp('hostile')
    Image.new('1', (20_000, 20_000)).save(h/'bomb.png')    # 49 KB, 400 megapixels: over Pillow's own bomb limit
    Image.new('1', (12_000, 12_000)).save(h/'huge.png')    # 18 KB, 144 megapixels
    (h/'garbage.png').write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    sf.write(h/'lying.wav', np.random.default_rng(1).normal(0, .1, 16_000).astype(np.float32), 16_000, subtype='PCM_16')
    wav = bytearray((h/'lying.wav').read_bytes())
    at = wav.index(b'data')
    wav[at + 4:at + 8] = struct.pack('<I', 16_000*2*600)   # claims 10 minutes, holds 1 s
    wav[4:8] = struct.pack('<I', 36 + 16_000*2*600)
    (h/'lying.wav').write_bytes(bytes(wav))
    write_test_mp4(h/'clip.mp4', np.zeros(16_000, np.float32), frames=[np.full((32, 32, 3), 40*i, np.uint8) for i in range(4)], fps=4)
    clip = (h/'clip.mp4').read_bytes()
    (h/'truncated.mp4').write_bytes(clip[:len(clip)//2])
    return h


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes tens of seconds (still part of the default run and of CI)')
    config.addinivalue_line('markers', 'numerics: compares results computed twice (reload, resume, export, batch composition, a trained '
                                       "model's claims); CI runs these again with the CPU kernels forced elsewhere (bash tools/dev.sh test-forced)")
