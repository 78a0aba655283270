"Bad data as a user meets it, through the console scripts: each case is one line on stderr naming the file (and field), a non-zero status, no traceback."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', OMP_NUM_THREADS='1', MPLBACKEND='Agg')


def run(prog, args, cwd):
    return subprocess.run([str(BIN/prog), *args], cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300)


def error_line(r, prog)->str:
    "The one error line of `prog`, checked to be the last thing on stderr, with no traceback before it."
    assert 'Traceback' not in r.stderr, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith(f'{prog}: error:')]
    assert len(lines) == 1 and r.stderr.rstrip().endswith(lines[0]), r.stderr
    return lines[0]


@pytest.fixture(scope='module')
def d(tmp_path_factory):
    "Tiny bad (and a few good) inputs, a folder of clips, and a saved tiny model."
    import soundfile as sf, torch
    from mmsent.data import write_test_mp4
    from mmsent.encoders import MultiModalProcessor
    from mmsent.model import EndToEndMultiModalModel
    d = tmp_path_factory.mktemp('data_errors')
    (d/'latin1.csv').write_bytes('id,text,label,split\na,très bien,positive,train\nb,ok,neutral,val\n'.encode('latin-1'))
    (d/'utf16.csv').write_bytes('id,text,label,split\na,good,positive,train\n'.encode('utf-16'))
    (d/'latin1.jsonl').write_bytes('{"id": "a", "text": "très", "label": 2, "split": "train"}\n'.encode('latin-1'))
    (d/'empty.csv').write_bytes(b'')
    (d/'header.csv').write_text('id,text,label,split\n')
    (d/'nolabel.csv').write_text('id,text,split\na,hi,train\n')
    (d/'range.csv').write_text('id,text,label,split\na,hi,7,train\n')
    (d/'badsplit.csv').write_text('id,text,label,split\na,hi,1,holdout\n')
    (d/'nosplit.csv').write_text('id,text,label\na,hi,1\n')
    sf.write(d/'nan.wav', np.full(8_000, np.nan, np.float32), 16_000, subtype='FLOAT')
    x = np.zeros(16_000, np.float32); x[12_000] = np.inf; sf.write(d/'inf.wav', x, 16_000, subtype='FLOAT')
    rng = np.random.default_rng(0)
    for n in ('a', 'b', 'c', 'e'): sf.write(d/f'{n}.wav', rng.normal(0, 0.1, 8_000).astype(np.float32), 16_000)
    sf.write(d/'tone8k.wav', rng.normal(0, 0.1, 4_000).astype(np.float32), 8_000)
    write_test_mp4(d/'mute.mp4', None, frames=[np.full((32, 32, 3), 90, np.uint8)]*4, fps=4)
    (d/'nan.csv').write_text('id,text,audio_path,label,split\nbad,hi,nan.wav,positive,train\nbad2,so,inf.wav,negative,train\n'
                             'a,great,a.wav,positive,train\nb,awful,b.wav,negative,train\nc,fine,c.wav,neutral,val\ne,meh,e.wav,neutral,test\n')
    (d/'notes.csv').write_text('id,text,audio_path,video_path,label,split\nm,It\u00e2\u0080\u0099s fine,,mute.mp4,positive,train\n'
                               'r,low rate,tone8k.wav,,neutral,train\np,plain,a.wav,,negative,train\n', encoding='utf-8')
    torch.manual_seed(0)
    EndToEndMultiModalModel.from_preset('tiny').save_pretrained(d/'model', processor=MultiModalProcessor.from_pretrained('tiny'))
    return d


@pytest.mark.parametrize('root,says', [
    ('latin1.csv', 'latin1.csv is not UTF-8: byte 0xe8 at line 2 (byte 24) cannot be decoded; save it as UTF-8'),
    ('utf16.csv', 'utf16.csv is UTF-16 text: save it as UTF-8'),
    ('latin1.jsonl', 'latin1.jsonl is not UTF-8: byte 0xe8 at line 1'),
    ('empty.csv', 'empty.csv is empty'),
    ('header.csv', 'header.csv has no rows'),
    ('nolabel.csv', "nolabel.csv has no 'label' (or 'score') column"),
    ('range.csv', 'range.csv:2: label id 7 is out of range'),
    ('badsplit.csv', "badsplit.csv:2: unknown split 'holdout'"),
    ('nosplit.csv', 'nosplit.csv: the manifest has no split column'),
    ('nowhere', '--data_root nowhere: no such file or folder'),
])
def test_check_data_unreadable_manifest(d, root, says):
    r = run('mmsent_check_data', ['--dataset', 'manifest', '--data_root', root], d)
    assert r.returncode == 1 and r.stdout == '', (r.stdout, r.stderr)
    line = error_line(r, 'mmsent_check_data')
    assert says in line and str(d) not in line, line


def test_check_data_nan_audio_is_a_problem(d):
    r = run('mmsent_check_data', ['--dataset', 'manifest', '--data_root', 'nan.csv'], d)
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr
    assert 'BAD nan.wav: non-finite samples: NaN or infinite, the first at 0.00 s' in r.stdout, r.stdout
    assert 'BAD inf.wav: non-finite samples: NaN or infinite, the first at 0.75 s' in r.stdout, r.stdout
    rep = json.loads(run('mmsent_check_data', ['--dataset', 'manifest', '--data_root', 'nan.csv', '--json'], d).stdout)['train']
    assert rep['problems'] == {'non-finite samples': 2} and [b['file'] for b in rep['bad_files']] == ['nan.wav', 'inf.wav']


def test_check_data_notes(d):
    r = run('mmsent_check_data', ['--dataset', 'manifest', '--data_root', 'notes.csv', '--split', 'train'], d)
    assert r.returncode == 0 and r.stderr == '', r.stderr
    out = r.stdout
    assert 'NOTE 1 video without an audio track (the sample has no audio):\n      mute.mp4' in out, out
    assert "NOTE 1 text repaired by ftfy (mojibake, control characters):\n      m: 'It\u2019s fine'" in out, out
    assert 'NOTE 1 audio file resampled to 16000 Hz:\n      tone8k.wav (8000 Hz)' in out, out
    notes = json.loads(run('mmsent_check_data', ['--dataset', 'manifest', '--data_root', 'notes.csv', '--split', 'train', '--json'], d).stdout)['train']['notes']
    assert notes == dict(videos_without_audio=[dict(id='m', file='mute.mp4')], texts_repaired=[dict(id='m', text='It\u2019s fine')],
                         audio_resampled=[dict(id='r', file='tone8k.wav', sampling_rate=8000)]), notes


@pytest.mark.parametrize('args,says', [
    (['--manifest', 'latin1.csv', '--out', 'p.csv'], 'latin1.csv is not UTF-8: byte 0xe8 at line 2'),
    (['--manifest', 'empty.csv', '--out', 'p.csv'], 'empty.csv is empty'),
    (['--audio', 'nan.wav'], 'nan.wav has NaN or infinite samples'),
    (['--text', 'hi', '--audio', 'inf.wav'], 'inf.wav has NaN or infinite samples'),
    (['--audio', 'missing.wav'], 'missing.wav'),
])
def test_predict_unreadable_input(d, args, says):
    r = run('mmsent_predict', ['--model', 'model', *args], d)
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = error_line(r, 'mmsent_predict')
    assert says in line and str(d) not in line, line
    assert not (d/'p.csv').exists()


@pytest.mark.parametrize('root,says', [
    ('latin1.csv', 'latin1.csv is not UTF-8: byte 0xe8 at line 2'),
    ('utf16.csv', 'utf16.csv is UTF-16 text: save it as UTF-8'),
    ('empty.csv', 'empty.csv is empty'),
])
def test_train_unreadable_manifest(d, tmp_path, root, says):
    r = run('mmsent_train', ['--dataset', 'manifest', '--data_root', root, '--epochs', '1', '--no_progress',
                             '--output_dir', str(tmp_path/'out'), '--log_dir', str(tmp_path/'logs')], d)
    assert r.returncode == 2, (r.stdout, r.stderr[-2000:])
    assert says in error_line(r, 'mmsent_train')


def test_train_nan_audio_fails_then_skip_bad_drops_it(d, tmp_path):
    args = ['--dataset', 'manifest', '--data_root', 'nan.csv', '--epochs', '1', '--no_progress', '--log_dir', str(tmp_path/'logs')]
    r = run('mmsent_train', [*args, '--output_dir', str(tmp_path/'a')], d)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert 'nan.wav (audio_path): non-finite samples' in r.stderr and 'inf.wav (audio_path)' in r.stderr and '--skip_bad' in r.stderr
    r = run('mmsent_train', [*args, '--output_dir', str(tmp_path/'b'), '--skip_bad'], d)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path/'b'/'data_report_train.json').read_text())
    assert rep['dropped_by_reason'] == {'non-finite samples': 2} and [s['id'] for s in rep['dropped_samples']] == ['bad', 'bad2']


HOSTILE = [   # mmsent_predict arguments, and what its one error line says (None: the file is usable and is predicted)
    (['--image', 'bomb.png'], 'image too large (400,000,000 pixels): bomb.png has more than 40,000,000 pixels'),
    (['--image', 'huge.png'], 'image too large (12000 x 12000): huge.png has more than 40,000,000 pixels'),
    (['--image', 'garbage.png'], 'cannot read image garbage.png'),
    (['--video', 'truncated.mp4'], 'truncated.mp4'),
    (['--audio', 'lying.wav'], None),
]


@pytest.mark.parametrize('args,says', HOSTILE, ids=[a[1] for a, _ in HOSTILE])
def test_hostile_files_through_the_cli(d, hostile, args, says):
    "Each hostile file: one error line naming it and exit status 2 (no traceback, no Pillow warning), or a prediction."
    r = run('mmsent_predict', ['--model', str(d/'model'), *args], hostile)
    if says is None:
        assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr
        return
    assert r.returncode == 2 and says in error_line(r, 'mmsent_predict'), r.stderr
    assert 'Warning' not in r.stderr, r.stderr


def test_hostile_files_through_the_predictor(d, hostile):
    "The same files through `Predictor`: each refusal is its error class, naming the file; the lying WAV gives the 1 s it holds."
    from mmsent.data import ImageReadError, ImageTooLarge, VideoReadError, AudioReadError, load_audio
    from mmsent.predict import Predictor
    pr = Predictor.from_pretrained(d/'model', device='cpu')
    for kw, err in ((dict(image=hostile/'bomb.png'), ImageTooLarge), (dict(image=hostile/'huge.png'), ImageTooLarge),
                    (dict(image=hostile/'garbage.png'), ImageReadError), (dict(video=hostile/'truncated.mp4'), (VideoReadError, AudioReadError))):
        with pytest.raises(err) as e: pr.predict(**kw)
        assert next(iter(kw.values())).name in str(e.value), e.value
    assert load_audio(hostile/'lying.wav').shape == (16_000,)
    assert pr.predict(audio=hostile/'lying.wav').modalities == ['audio']


def test_hostile_files_through_check_data(hostile):
    "mmsent_check_data over a manifest of them: each bad file is listed with its reason, the usable ones pass, exit status 1."
    (hostile/'m.csv').write_text('id,text,audio_path,image_path,video_path,label,split\nb,hi,,bomb.png,,positive,train\n'
                                 'h,hi,,huge.png,,negative,train\ng,hi,,garbage.png,,neutral,train\nl,hi,lying.wav,,,positive,train\n'
                                 't,hi,,,truncated.mp4,negative,val\nok,fine,,,clip.mp4,neutral,test\n')
    r = run('mmsent_check_data', ['--dataset', 'manifest', '--data_root', 'm.csv'], hostile)
    assert r.returncode == 1 and 'Traceback' not in r.stdout + r.stderr and 'Warning' not in r.stderr, (r.stdout, r.stderr)
    bad = sorted(l.split()[1].rstrip(':') for l in r.stdout.splitlines() if l.strip().startswith('BAD '))
    assert bad == ['bomb.png', 'garbage.png', 'huge.png', 'truncated.mp4'], r.stdout
    assert 'image too large (400,000,000 pixels)' in r.stdout and 'image too large (12000 x 12000)' in r.stdout, r.stdout


def test_training_with_skip_bad_lists_the_hostile_files_and_goes_on(hostile, tmp_path):
    "mmsent_train over a manifest with the hostile files: without --skip_bad, one error naming them; with it, they are listed and the run ends."
    (hostile/'train.csv').write_text('id,text,audio_path,image_path,video_path,label,split\nb,hi,,bomb.png,,positive,train\n'
                                      'h,hi,,huge.png,,negative,train\ng,hi,,garbage.png,,neutral,train\nl,fine,lying.wav,,,positive,train\n'
                                      'c,so so,,,clip.mp4,neutral,train\nt,hi,,,truncated.mp4,negative,val\nv,ok,lying.wav,,clip.mp4,neutral,val\n')
    args = ['--dataset', 'manifest', '--data_root', str(hostile/'train.csv'), '--epochs', '1', '--no_progress', '--max_audio_seconds', '2',
            '--log_dir', str(tmp_path/'logs')]
    r = run('mmsent_train', [*args, '--output_dir', str(tmp_path/'a')], hostile)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and '--skip_bad' in r.stderr, r.stderr[-2000:]
    assert 'bomb.png' in r.stderr and 'image too large (400,000,000 pixels)' in r.stderr, r.stderr[-2000:]
    r = run('mmsent_train', [*args, '--output_dir', str(tmp_path/'b'), '--skip_bad'], hostile)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    dropped = {s['id'] for split in ('train', 'val') for s in json.loads((tmp_path/'b'/f'data_report_{split}.json').read_text())['dropped_samples']}
    assert dropped == {'b', 'h', 'g', 't'}, dropped
