"mmsent_predict as a user runs it: every input kind, every bad input, the interactive mode through stdin, a manifest."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

BIN = Path(sys.executable).parent


def run(args, cwd, stdin=None):
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
    return subprocess.run([str(BIN/'mmsent_predict'), *args], cwd=cwd, capture_output=True, text=True, env=env, input=stdin, timeout=300)


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    "A saved tiny model and input files of every kind, good and bad."
    import soundfile as sf, torch
    from PIL import Image
    from mmsent.data import write_test_mp4
    from mmsent.encoders import MultiModalProcessor
    from mmsent.model import EndToEndMultiModalModel
    d = tmp_path_factory.mktemp('predict')
    torch.manual_seed(0)
    EndToEndMultiModalModel.from_preset('tiny').save_pretrained(d/'model', processor=MultiModalProcessor.from_pretrained('tiny'))
    rng = np.random.default_rng(0)
    sf.write(d/'stereo8k.wav', rng.normal(0, 0.1, (8_000, 2)).astype(np.float32), 8_000)
    sf.write(d/'silence.flac', np.zeros(16_000, np.float32), 16_000)
    sf.write(d/'long.wav', rng.normal(0, 0.1, 16_000*30).astype(np.float32), 16_000)   # 30 s: cropped
    Image.new('CMYK', (20, 30), (10, 200, 30, 0)).save(d/'cmyk.jpg')
    Image.new('I;16', (1, 1)).save(d/'one16.png')
    Image.new('1', (12_000, 12_000)).save(d/'huge.png')   # 18 KB, 144 megapixels: refused from its header
    Image.fromarray(rng.integers(0, 255, (24, 24, 4), dtype=np.uint8), 'RGBA').save(d/'rgba.png')
    write_test_mp4(d/'clip.mp4', rng.normal(0, 0.1, 16_000).astype(np.float32), frames=[np.full((32, 32, 3), 40*i, np.uint8) for i in range(4)], fps=4)
    (d/'empty.wav').write_bytes(b'')
    (d/'text.png').write_text('not an image')
    (d/'corrupt.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + bytes(300))
    sf.write(d/'nan.wav', np.full(1_600, np.nan, np.float32), 16_000, subtype='FLOAT')
    x = np.zeros(8_000, np.float32); x[100] = np.inf; sf.write(d/'inf8k.wav', x, 8_000, subtype='FLOAT')
    (d/'latin1.csv').write_bytes('id,text\na,très bien\n'.encode('latin-1'))
    (d/'utf16.csv').write_bytes('id,text\na,good\n'.encode('utf-16'))
    (d/'latin1.jsonl').write_bytes('{"id": "a", "text": "très"}\n'.encode('latin-1'))
    (d/'empty.csv').write_bytes(b'')
    (d/'header.csv').write_text('id,text\n')
    import shutil
    for name in ('list_config', 'four_heads'): shutil.copytree(d/'model', d/name)
    (d/'list_config'/'config.json').write_text('[1, 2]')
    cfg = json.loads((d/'model'/'config.json').read_text()); cfg['fusion']['n_heads'] = 'four'
    (d/'four_heads'/'config.json').write_text(json.dumps(cfg))
    return d


@pytest.mark.parametrize('args,mods', [
    (['--text', 'what a great film 🎬', '--audio', 'stereo8k.wav', '--image', 'cmyk.jpg'], ['text', 'audio', 'visual']),
    (['--video', 'clip.mp4'], ['audio', 'visual']),
    (['--audio', 'silence.flac', '--image', 'one16.png'], ['audio', 'visual']),
    (['--text', '', '--audio', 'long.wav', '--image', 'rgba.png'], ['text', 'audio', 'visual']),
])
def test_input_kinds(inputs, args, mods):
    r = run(['--model', 'model', *args, '--json'], inputs)
    assert r.returncode == 0, r.stderr[-2000:]
    p = json.loads(r.stdout)
    assert p['modalities'] == mods and p['label'] in ('negative', 'neutral', 'positive')
    assert abs(sum(p['probs'].values()) - 1) < 1e-5 and set(p['unimodal']) == set(mods)
    assert np.asarray(p['attention']).shape == (4, len(mods), len(mods))
    assert set(p['shapley']) == set(mods)   # the Shapley values add up from the (uniform) prior to the prediction's log-probability
    assert abs(sum(p['shapley'].values()) - (np.log(p['probs'][p['label']]) - np.log(1/3))) < 1e-4


def test_text_output(inputs):
    r = run(['--model', 'model', '--text', 'not bad at all', '--image', 'rgba.png'], inputs)
    assert r.returncode == 0, r.stderr
    assert 'from text + visual' in r.stdout and 'attention' in r.stdout and 'visual alone' in r.stdout and 'Shapley values' in r.stdout


def test_no_explain(inputs):
    "--no_explain leaves the Shapley values out and changes nothing else."
    args = ['--model', 'model', '--text', 'not bad at all', '--image', 'rgba.png', '--json']
    with_values, without = (json.loads(run(a, inputs).stdout) for a in (args, args + ['--no_explain']))
    assert without['shapley'] is None and set(with_values['shapley']) == {'text', 'visual'}
    assert without['label'] == with_values['label'] and max(abs(without['probs'][c] - with_values['probs'][c]) for c in without['probs']) < 1e-6


@pytest.mark.parametrize('args,says', [
    (['--audio', 'nope.wav'], 'nope.wav'),
    (['--audio', 'empty.wav'], 'empty.wav'),
    (['--image', 'text.png'], 'text.png'),
    (['--video', 'corrupt.mp4'], 'corrupt.mp4'),
    ([], 'no input'),
    (['--model', 'nowhere', '--text', 'hi'], 'nowhere'),
    (['--model', 'list_config', '--text', 'hi'], 'list_config/config.json must hold a JSON object, got a list'),
    (['--model', 'four_heads', '--text', 'hi'], 'four_heads/config.json does not match its SHA-256 in checksums.sha256'),
    (['--audio', 'nan.wav'], 'nan.wav has NaN or infinite samples'),
    (['--image', 'huge.png'], 'image too large (12000 x 12000)'),
    (['--text', 'hi', '--audio', 'inf8k.wav'], 'inf8k.wav has NaN or infinite samples'),
    (['--manifest', 'latin1.csv', '--out', 'p.csv'], 'latin1.csv is not UTF-8: byte 0xe8 at line 2'),
    (['--manifest', 'utf16.csv', '--out', 'p.csv'], 'utf16.csv is UTF-16 text: save it as UTF-8'),
    (['--manifest', 'latin1.jsonl', '--out', 'p.jsonl'], 'latin1.jsonl is not UTF-8: byte 0xe8 at line 1'),
    (['--manifest', 'empty.csv', '--out', 'p.csv'], 'empty.csv is empty'),
    (['--manifest', 'header.csv', '--out', 'p.csv'], 'header.csv has no rows'),
    (['--manifest', 'nowhere.csv', '--out', 'p.csv'], 'nowhere.csv'),
])
def test_bad_inputs(inputs, args, says, monkeypatch, capsys):
    "In process, as the console script calls it (the options parsed by the command's own parser): exit status 2, one line."
    from fastcore.script import anno_parser
    from mmsent.predict import mmsent_predict
    monkeypatch.chdir(inputs)
    options = vars(anno_parser(mmsent_predict.__wrapped__).parse_args(['--model', 'model', *args] if '--model' not in args else args))
    for internal in ('pdb', 'xtra'): options.pop(internal, None)
    with pytest.raises(SystemExit) as e: mmsent_predict(**options)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert err.startswith('mmsent_predict: error:') and says in err, err
    assert err.count('\n') == 1 and 'Traceback' not in err and str(inputs) not in err, err   # one line, relative names
    assert not (inputs/'p.csv').exists() and not (inputs/'p.jsonl').exists()   # nothing half-written


@pytest.mark.parametrize('args,says', [(['--audio', 'nope.wav'], 'nope.wav'),
                                       (['--manifest', 'latin1.csv', '--out', 'p.csv'], 'latin1.csv is not UTF-8: byte 0xe8 at line 2')])
def test_the_installed_command_says_one_line(inputs, args, says):
    "The console script in a fresh process: nothing else on stderr (no warning at import, no traceback)."
    r = run(['--model', 'model', *args], inputs)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith('mmsent_predict: error:') and says in r.stderr, r.stderr
    assert r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr and str(inputs) not in r.stderr, r.stderr
    assert not (inputs/'p.csv').exists()


def test_interactive_through_stdin(inputs):
    rounds = ['great movie', '', '', '',                 # text only
              '', 'missing.wav', '', '',                 # a bad path: an error, then it goes on
              'fine', '', 'rgba.png', '',                # text + image
              'quit']
    r = run(['--model', 'model', '--interactive'], inputs, stdin='\n'.join(rounds) + '\n')
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('from text') == 2 and 'from text + visual' in r.stdout
    assert 'error:' in r.stdout and 'missing.wav' in r.stdout and r.stdout.rstrip().endswith('bye')
    r = run(['--model', 'model', '--interactive', '--json'], inputs, stdin='hello\n')   # end of input mid-sample
    assert r.returncode == 0 and 'bye' in r.stdout


def test_manifest(inputs):
    (inputs/'m.csv').write_text("id,text,audio_path,image_path,video_path\n"
                                "a,great,stereo8k.wav,cmyk.jpg,\nb,meh,,,\nc,,nope.wav,,\nd,,,,clip.mp4\ne,,nan.wav,,\nf,,,,corrupt.mp4\n")
    r = run(['--model', 'model', '--manifest', 'm.csv', '--out', 'preds.jsonl'], inputs)
    assert r.returncode == 1, r.stderr   # predictions written, but some rows had none: listed, and a non-zero status
    rows = [json.loads(l) for l in (inputs/'preds.jsonl').read_text().splitlines()]
    assert [x['id'] for x in rows] == ['a', 'b', 'd'] and rows[2]['modalities'] == ['audio', 'visual']
    assert 'wrote 3 predictions' in r.stdout and '3 of 6 rows of m.csv unusable' in r.stderr and 'Traceback' not in r.stderr
    for sid, name in [('c', 'nope.wav'), ('e', 'nan.wav'), ('f', 'corrupt.mp4')]: assert f'{sid}: ' in r.stderr and name in r.stderr
    r = run(['--model', 'model', '--manifest', 'm.csv', '--out', 'preds.csv', '--strict'], inputs)
    assert r.returncode == 2 and [l for l in r.stderr.splitlines() if 'mmsent_predict' in l] == ["mmsent_predict: error: m.csv: sample 'c': audio file not found: nope.wav"]
    (inputs/'ok.csv').write_text("id,text\na,great\nb,awful\n")
    r = run(['--model', 'model', '--manifest', 'ok.csv', '--out', 'ok.csv.d/preds.csv'], inputs)
    assert r.returncode == 0 and r.stderr.count('mmsent_predict') == 0, r.stderr
