"""The N-class and dialogue synthetic sets from the command line: `mmsent_synth --labels` with 5 classes trains (`--seeds`, three
runs) to beat every single-modality ceiling on each seed; a 5-class model and a 7-class one then evaluate, predict, serve
and export under their own class names (2 classes: tests/test_labels.py); a dialogue
set with `--context_turns 1` beats every context-free predictor over three seeds, and predicts, evaluates, serves and
exports with its context."""
import csv, json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
FIVE = ('one', 'two', 'three', 'four', 'five')
SEVEN = ('anger', 'disgust', 'fear', 'joy', 'neutral', 'sadness', 'surprise')


def cli(cmd, *args, cwd=None, env=None):
    return subprocess.run([str(BIN/cmd), *map(str, args)], capture_output=True, text=True, env=env or ENV, cwd=cwd, timeout=900)


@pytest.fixture(scope='module')
def five(tmp_path_factory):
    "A 5-class synthetic set (each modality shows the class half the time) and three training runs on it (`--seeds 0 1 2`), classes in the set's order."
    d = tmp_path_factory.mktemp('five')
    r = cli('mmsent_synth', '--out', d/'data', '--n', '800', '--labels', ','.join(FIVE), '--show', '0.5,0.5,0.5', '--splits', '0.6,0.2,0.2')
    assert r.returncode == 0, r.stderr[-2000:]
    # 12 epochs: test accuracy 0.807, 0.793, 0.740 for seeds 0-2 on an AMD EPYC (AVX-512), against the bar of 0.65
    r = cli('mmsent_train', '--dataset', 'manifest', '--data_root', d/'data'/'manifest.csv', '--labels', ','.join(FIVE), '--seeds', '0', '1', '2', '--epochs', '12',
            '--batch_size', '16', '--max_audio_seconds', '2', '--no_progress', '--output_dir', d/'runs', '--log_dir', d/'runs'/'logs')
    assert r.returncode == 0, r.stderr[-3000:]
    return d


@pytest.mark.slow
def test_five_classes_beat_every_single_modality_ceiling_on_three_seeds(five):
    from mmsent.synth import SynthConfig, expected_accuracy
    ceil = expected_accuracy(SynthConfig(labels=FIVE, show=(0.5, 0.5, 0.5)))
    single = max(ceil[m] for m in ('text', 'audio', 'visual'))
    assert single == pytest.approx(0.6) and ceil['fused'] == pytest.approx(0.9)
    res = json.loads((five/'runs'/'results.json').read_text())
    acc = {s: r['accuracy'] for s, r in res['per_seed'].items()}
    assert len(acc) == 3 and all(r['n'] > 130 for r in res['per_seed'].values()), res['per_seed']   # 150 test samples (the split is drawn per sample)
    assert all(a >= single + 0.05 for a in acc.values()), (acc, single)   # 150 test samples: 0.05 is more than two standard errors
    assert all(a <= ceil['fused'] + 0.05 for a in acc.values()), acc       # and no run claims more than is there


def check_model(model:Path, names:tuple, data_root:Path, tmp:Path, serve_and_export:bool=True):
    "Evaluate, predict (Python and command line), serve and export a model of classes `names`, checking the names at each step."
    cfg = json.loads((model/'config.json').read_text())
    assert cfg['labels'] == list(names) and cfg['id2label'] == {str(i): n for i, n in enumerate(names)}
    r = cli('mmsent_eval', '--model', model, '--dataset', 'manifest', '--data_root', data_root, '--out', tmp/'eval', '--no_progress')
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp/'eval'/'metrics.json').read_text())
    assert list(rep['fused']['per_class']) == list(names) and np.array(rep['fused']['confusion_matrix']).shape == (len(names),)*2
    assert set(rep['shapley']['per_class']) <= set(names) and (tmp/'eval'/'confusion_matrix.png').stat().st_size > 0
    with open(tmp/'eval'/'predictions.csv', newline='') as f: head = next(csv.reader(f))
    assert head[:3 + len(names)] == ['id', 'label', 'prediction', *[f'p_{n}' for n in names]]
    row = next(csv.DictReader(open(data_root)))
    args = ['--text', row['text'], '--audio', data_root.parent/row['audio_path'], '--image', data_root.parent/row['image_path']]
    r = cli('mmsent_predict', '--model', model, *args, '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    p = json.loads(r.stdout)
    assert list(p['probs']) == list(names) and p['label'] in names and abs(sum(p['probs'].values()) - 1) < 1e-4
    if not serve_and_export: return
    pytest.importorskip('litserve'); httpx = pytest.importorskip('httpx')
    from mmsent.serve import running_server
    with running_server(model, log=tmp/'server.log') as url:
        s = httpx.post(f'{url}/predict', json={'text': row['text']}, timeout=60)
    assert s.status_code == 200 and list(s.json()['probs']) == list(names), s.text
    pytest.importorskip('onnxruntime'); pytest.importorskip('onnxscript')
    r = cli('mmsent_export', '--model', model, '--out', tmp/'onnx')
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp/'onnx'/'export.json').read_text())['labels'] == list(names)
    r = cli('mmsent_predict', '--model', tmp/'onnx', '--backend', 'onnxruntime', *args, '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    q = json.loads(r.stdout)
    assert list(q['probs']) == list(names)
    np.testing.assert_allclose(list(q['probs'].values()), list(p['probs'].values()), atol=1e-4)


@pytest.mark.slow
def test_a_five_class_model_evaluates_predicts_serves_and_exports(five, tmp_path):
    check_model(five/'runs'/'seed_0'/'end_to_end_multimodal_best', FIVE, five/'data'/'manifest.csv', tmp_path)


@pytest.mark.slow
def test_seven_classes_from_the_generated_set(tmp_path):
    "`mmsent_train --labels` with seven names and no data generates the 7-class synthetic set, and `mmsent_eval` without data reads it back."
    env = dict(ENV, MMSENT_CACHE=str(tmp_path/'cache'))
    r = cli('mmsent_train', '--labels', ','.join(SEVEN), '--synth_n', '140', '--epochs', '1', '--batch_size', '16', '--max_audio_seconds', '2',
            '--no_progress', '--output_dir', tmp_path/'run', '--log_dir', tmp_path/'run'/'logs', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    model = tmp_path/'run'/'end_to_end_multimodal_best'
    data = next((tmp_path/'cache'/'synth').glob('n140-*'))
    assert json.loads((data/'synth_config.json').read_text())['labels'] == list(SEVEN)
    r = cli('mmsent_eval', '--model', model, '--synth_n', '140', '--out', tmp_path/'eval0', '--no_progress', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert list(json.loads((tmp_path/'eval0'/'metrics.json').read_text())['fused']['per_class']) == list(SEVEN)
    check_model(model, SEVEN, data/'manifest.csv', tmp_path)


# --- dialogue context: a turn's class repeats the previous turn's, so the previous turn's text tells what a blank turn cannot ---
DIALOGUE = dict(labels='a,b,c,d', show='0.6,0,0', p_repeat='0.9', turns='8')   # audio and image never show the class: text alone decides
BLANK = "So, the movie seemed ordinary today!"   # a turn whose own text shows no class (a plain word)


@pytest.fixture(scope='module')
def dialogue(tmp_path_factory):
    "A 4-class dialogue set and three runs with `--context_turns 1` (text only: the other modalities carry no class), plus one run without context."
    d = tmp_path_factory.mktemp('dialogue')
    r = cli('mmsent_synth', '--out', d/'data', '--n', '1200', '--labels', DIALOGUE['labels'], '--show', DIALOGUE['show'], '--dialogue_turns',
            DIALOGUE['turns'], '--p_repeat', DIALOGUE['p_repeat'], '--splits', '0.6,0.2,0.2')
    assert r.returncode == 0 and 'context 0.842' in r.stdout, r.stdout + r.stderr[-2000:]
    common = ['--dataset', 'manifest', '--data_root', d/'data'/'manifest.csv', '--modalities', 'text', '--epochs', '10', '--batch_size', '16', '--no_progress']
    r = cli('mmsent_train', *common, '--context_turns', '1', '--seeds', '0', '1', '2', '--output_dir', d/'runs', '--log_dir', d/'runs'/'logs')
    assert r.returncode == 0, r.stderr[-3000:]
    r = cli('mmsent_train', *common, '--seeds', '0', '--output_dir', d/'no_context', '--log_dir', d/'no_context'/'logs')
    assert r.returncode == 0, r.stderr[-3000:]
    return d


@pytest.mark.slow
def test_context_beats_every_context_free_predictor_on_three_seeds(dialogue):
    from mmsent.synth import SynthConfig, expected_accuracy
    ceil = expected_accuracy(SynthConfig(labels=('a', 'b', 'c', 'd'), show=(0.6, 0, 0), dialogue_turns=8, p_repeat=0.9))
    assert (round(ceil['fused'], 3), round(ceil['context'], 3)) == (0.7, 0.842)   # no context-free predictor beats 0.7, on any modality
    res = json.loads((dialogue/'runs'/'results.json').read_text())['per_seed']
    acc = {s: r['accuracy'] for s, r in res.items()}
    assert len(acc) == 3 and all(r['n'] > 200 for r in res.values()), res
    assert all(a >= ceil['fused'] + 0.05 for a in acc.values()), acc   # over 200 test turns: 0.05 is more than two standard errors
    assert all(a <= ceil['context'] + 0.06 for a in acc.values()), acc
    alone = json.loads((dialogue/'no_context'/'results.json').read_text())['per_seed']['0']['accuracy']
    assert alone <= ceil['fused'] + 0.09 and min(acc.values()) > alone, (alone, acc)   # without context: at most its ceiling (+ 3 standard errors)
    model = dialogue/'runs'/'seed_0'/'end_to_end_multimodal_best'
    assert json.loads((model/'config.json').read_text())['context_turns'] == 1
    assert json.loads((model/'processor_config.json').read_text())['context_turns'] == 1
    assert 'previous 1 turn(s) of its dialogue' in (model/'README.md').read_text()


@pytest.mark.slow
def test_a_context_model_predicts_evaluates_serves_and_exports_with_context(dialogue, tmp_path):
    "The previous turn's word moves a blank turn's prediction to its class, through Python, the command line, the server and ONNX Runtime."
    from mmsent.predict import Predictor
    model = dialogue/'runs'/'seed_0'/'end_to_end_multimodal_best'
    pred = Predictor.from_pretrained(model)
    alone, with_ctx = pred.predict(text=BLANK), pred.predict(text=BLANK, context=["Ann: to me the film felt stormy."])   # 'stormy': class c
    assert with_ctx.label == 'c' and with_ctx.probs['c'] > alone.probs['c'] + 0.2, (alone.probs, with_ctx.probs)
    r = cli('mmsent_predict', '--model', model, '--text', BLANK, '--context', '["Ann: to me the film felt stormy."]', '--json')
    assert r.returncode == 0 and json.loads(r.stdout)['label'] == 'c', r.stdout + r.stderr[-2000:]
    r = cli('mmsent_predict', '--model', model, '--text', BLANK, '--context', 'Ann: stormy')
    assert r.returncode == 2 and '--context must be a JSON list of strings' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    # a shuffled manifest predicts the same: the context comes from the turn order, never from the row order or a later turn
    rows = list(csv.DictReader(open(dialogue/'data'/'manifest.csv')))
    rows = [r for r in rows if r['split'] == 'test'][:64]
    for name, order in (('ordered', rows), ('shuffled', [rows[i] for i in np.random.default_rng(0).permutation(len(rows))])):
        with open(dialogue/'data'/f'{name}.csv', 'w', newline='') as f:
            w = csv.DictWriter(f, list(rows[0])); w.writeheader(); w.writerows(order)
        r = cli('mmsent_predict', '--model', model, '--manifest', dialogue/'data'/f'{name}.csv', '--out', tmp_path/f'{name}.csv')
        assert r.returncode == 0, r.stderr[-2000:]
    got = {n: {r['id']: r['prediction'] for r in csv.DictReader(open(tmp_path/f'{n}.csv'))} for n in ('ordered', 'shuffled')}
    assert got['ordered'] == got['shuffled']
    r = cli('mmsent_eval', '--model', model, '--dataset', 'manifest', '--data_root', dialogue/'data'/'manifest.csv', '--out', tmp_path/'eval', '--no_progress')
    assert r.returncode == 0, r.stderr[-3000:]
    seed0 = json.loads((dialogue/'runs'/'results.json').read_text())['per_seed']['0']['accuracy']
    assert json.loads((tmp_path/'eval'/'metrics.json').read_text())['fused']['accuracy'] == pytest.approx(seed0, abs=1e-6)
    pytest.importorskip('litserve'); httpx = pytest.importorskip('httpx')
    from mmsent.serve import running_server
    with running_server(model, log=tmp_path/'server.log') as url:
        ok = httpx.post(f'{url}/predict', json={'text': BLANK, 'context': ["Ann: to me the film felt stormy."]}, timeout=60)
        bad = httpx.post(f'{url}/predict', json={'text': BLANK, 'context': 'stormy'}, timeout=60)
    assert ok.status_code == 200 and ok.json()['label'] == 'c', ok.text
    assert bad.status_code == 422 and bad.json()['field'] == 'context', bad.text
    pytest.importorskip('onnxruntime'); pytest.importorskip('onnxscript')   # the exported model takes the context through its processor
    r = cli('mmsent_export', '--model', model, '--out', tmp_path/'onnx')
    assert r.returncode == 0, r.stderr[-2000:]
    onnx = Predictor.from_pretrained(tmp_path/'onnx', backend='onnxruntime').predict(text=BLANK, context=["Ann: to me the film felt stormy."])
    assert onnx.label == 'c'
    np.testing.assert_allclose(list(onnx.probs.values()), list(with_ctx.probs.values()), atol=1e-4)


def test_a_model_without_context_refuses_one(tmp_path):
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.encoders import MultiModalProcessor
    from mmsent.predict import Predictor
    pred = Predictor(EndToEndMultiModalModel.from_preset('tiny'), MultiModalProcessor.from_pretrained('tiny'))
    with pytest.raises(ValueError, match='trained without dialogue context'): pred.predict(text='hi', context=['Ann: hello'])
    with pytest.raises(TypeError, match='must be a list of strings'): pred.predict(text='hi', context='Ann: hello')
    r = cli('mmsent_train', '--modalities', 'audio,visual', '--context_turns', '1', '--output_dir', tmp_path/'o')
    assert r.returncode == 2 and '--context_turns: gives earlier turns to the text encoder' in r.stderr, r.stderr[-2000:]

