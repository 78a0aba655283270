"mmsent_export and mmsent_predict --backend onnxruntime as a user runs them: the export predicts as the PyTorch model does; bad directories are one line."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

pytest.importorskip('onnxruntime'); pytest.importorskip('onnxscript')
BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')


def run(tool, args, cwd):
    "The console script, or (before it is installed) a script file that calls the same function, as a console script does."
    if (BIN/tool).exists(): exe = [str(BIN/tool)]
    else:
        (Path(cwd)/f'{tool}.py').write_text(f'from mmsent.{tool.split("_")[1]} import {tool}\n{tool}()\n')
        exe = [sys.executable, str(Path(cwd)/f'{tool}.py')]
    return subprocess.run([*exe, *args], cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    "A saved tiny model, a sound and an image, and the model exported by mmsent_export."
    import soundfile as sf, torch
    from PIL import Image
    from mmsent.encoders import MultiModalProcessor
    from mmsent.model import EndToEndMultiModalModel
    d = tmp_path_factory.mktemp('export')
    torch.manual_seed(0)
    EndToEndMultiModalModel.from_preset('tiny').save_pretrained(d/'model', processor=MultiModalProcessor.from_pretrained('tiny'))
    rng = np.random.default_rng(0)
    sf.write(d/'voice.wav', rng.normal(0, 0.1, 20_000).astype(np.float32), 16_000)
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(d/'face.png')
    r = run('mmsent_export', ['--model', 'model', '--out', 'onnx'], d)
    assert r.returncode == 0, r.stderr
    assert 'wrote model.onnx' in r.stdout
    return d


@pytest.mark.numerics
def test_onnxruntime_predicts_as_torch(exported):
    "mmsent_predict --backend onnxruntime --json gives the PyTorch backend's label and probabilities (within 1e-4); no Shapley values."
    from mmsent.predict import Predictor
    o = run('mmsent_predict', ['--model', 'onnx', '--backend', 'onnxruntime', '--json', '--text', 'what a lovely day',
                               '--audio', 'voice.wav', '--image', 'face.png'], exported)
    assert o.returncode == 0, o.stderr
    o = json.loads(o.stdout)
    t = Predictor.from_pretrained(exported/'model', backend='torch', device='cpu').predict(
        text='what a lovely day', audio=exported/'voice.wav', image=exported/'face.png', explain=True).to_dict()   # the CLI's code path, in this process
    assert o['label'] == t['label'] and o['modalities'] == t['modalities'] == ['text', 'audio', 'visual']
    assert max(abs(o['probs'][c] - t['probs'][c]) for c in t['probs']) <= 1e-4
    assert o['shapley'] is None and t['shapley'] is not None


def test_export_json(exported):
    info = json.loads((exported/'onnx'/'export.json').read_text())
    assert info['graphs'] == ['model.onnx'] and info['modalities'] == ['text', 'audio', 'visual']
    assert [i['name'] for i in info['inputs']][:2] == ['modality_mask', 'text_inputs']
    assert info['inputs'][1]['shape'] == ['batch', 'tokens'] and info['inputs'][0]['dtype'] == 'bool'
    assert (exported/'onnx'/'processor_config.json').exists()


def test_bad_directories(exported):
    "--model without a model, --backend onnxruntime on a directory without model.onnx: one line, exit 2."
    r = run('mmsent_export', ['--model', 'onnx', '--out', 'x'], exported)
    assert r.returncode == 2 and 'config.json is missing' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run('mmsent_predict', ['--model', 'model', '--backend', 'onnxruntime', '--text', 'hi'], exported)
    assert r.returncode == 2 and 'model.onnx is missing' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
