"Console scripts, driven as a user would."
import json, subprocess, sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_mmsent_info_json():
    r = subprocess.run([str(BIN/'mmsent_info'), '--json'], capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    assert set(info['presets']) == {'tiny', 'small', 'base'}
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
