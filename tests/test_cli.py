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
