"Console scripts, driven as a user would."
import json, subprocess, sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_mmsent_info_json():
    r = subprocess.run([str(BIN/'mmsent_info'), '--json'], capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    assert set(info['presets']) == {'tiny', 'small', 'base', 'modern'}
    assert info['presets']['base']['text'] == 'roberta-base'
    assert info['default_device'] in ('cpu', 'cuda', 'mps')


def test_mmsent_train_has_a_flag_for_every_trainconfig_field():
    "Every `TrainConfig` field is an option of the installed `mmsent_train`, listed by its --help (the docs say so)."
    from dataclasses import fields
    from mmsent.train import TrainConfig, train_parser
    opts = {a.dest: a.option_strings for a in train_parser()._actions}
    h = subprocess.run([str(BIN/'mmsent_train'), '--help'], capture_output=True, text=True, check=True).stdout
    missing = [f.name for f in fields(TrainConfig) if not any(o in h.split() or f'{o},' in h.split() for o in opts.get(f.name, []))]
    assert not missing, f"TrainConfig fields with no mmsent_train option: {missing}"


FAULT = '''
import mmsent.train as T
real, n = T.train_step, [0]
def train_step(run, batch):
    n[0] += 1
    if n[0] == 2: raise RuntimeError("a fault in step 2")
    return real(run, batch)
T.train_step = train_step
T.mmsent_train()
'''


def test_a_fault_with_loader_workers_exits_with_its_traceback(tmp_path):
    "An unexpected error mid-training while DataLoader workers run: the traceback and status 1, not a process left waiting on its workers."
    import os
    from mmsent.synth import synthesize
    synthesize(tmp_path/'data', n=60, seed=0)
    (tmp_path/'fault.py').write_text(FAULT)
    r = subprocess.run([sys.executable, 'fault.py', '--data_root', 'data', '--epochs', '1', '--batch_size', '8', '--num_workers', '2', '--no_progress'],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1'))
    assert r.returncode == 1 and 'RuntimeError: a fault in step 2' in r.stderr, r.stderr[-3000:]
