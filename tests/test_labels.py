"""Label sets other than negative/neutral/positive, as a user runs them: a 2-class manifest trains, evaluates, predicts,
serves and exports under its own class names; `--labels` gives 5 classes to data that shows 3 of them; a label outside
the set, a changed label set on resume and a regression with labels are refused in one line; MELD's emotions."""
import csv, json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
FAST = ['--no_progress', '--max_audio_seconds', '2', '--batch_size', '16', '--epochs', '1']


def cli(cmd, *args, cwd=None):
    return subprocess.run([str(BIN/cmd), *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600)


def relabel(src:Path, dst:Path, names:dict)->Path:
    "The synthetic manifest with its labels renamed by `names` (a label mapped to None drops the row), written beside the data."
    with open(src/'manifest.csv', newline='') as f: rows = list(csv.DictReader(f))
    rows = [dict(r, label=names[r['label']]) for r in rows if names[r['label']] is not None]
    with open(dst, 'w', newline='') as f:
        w = csv.DictWriter(f, list(rows[0])); w.writeheader(); w.writerows(rows)
    return dst


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from mmsent.synth import synthesize
    d = tmp_path_factory.mktemp('labels')
    synthesize(d, n=120, seed=3)
    relabel(d, d/'two.csv', dict(negative='bad', neutral=None, positive='good'))
    relabel(d, d/'stars.csv', dict(negative='1 star', neutral='3 stars', positive='5 stars'))
    return d


@pytest.fixture(scope='module')
def two_class(data):
    "One epoch on the 2-class manifest (bad, good: its own names, in alphabetical order)."
    r = cli('mmsent_train', '--dataset', 'manifest', '--data_root', data/'two.csv', '--output_dir', data/'m2', '--log_dir', data/'m2'/'logs', *FAST)
    assert r.returncode == 0, r.stderr[-3000:]
    return data/'m2'/'end_to_end_multimodal_best'


def test_a_two_class_model_keeps_its_names_through_eval_predict_and_export(data, two_class, tmp_path):
    from mmsent.export import export_onnx
    from mmsent.predict import Predictor
    cfg = json.loads((two_class/'config.json').read_text())
    assert (cfg['labels'], cfg['id2label'], cfg['num_classes']) == (['bad', 'good'], {'0': 'bad', '1': 'good'}, 2)
    assert '2-class classification into bad, good' in (two_class/'README.md').read_text()
    r = cli('mmsent_eval', '--model', two_class, '--dataset', 'manifest', '--data_root', data/'two.csv', '--out', tmp_path/'eval', '--no_progress')
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path/'eval'/'metrics.json').read_text())
    assert list(rep['fused']['per_class']) == ['bad', 'good'] and np.array(rep['fused']['confusion_matrix']).shape == (2, 2)
    assert set(rep['shapley']['per_class']) <= {'bad', 'good'}
    head = (tmp_path/'eval'/'predictions.csv').read_text().splitlines()[0].split(',')
    assert head[:5] == ['id', 'label', 'prediction', 'p_bad', 'p_good']
    p = Predictor.from_pretrained(two_class).predict(text='what a lovely day')
    assert set(p.probs) == {'bad', 'good'} and p.label in ('bad', 'good') and set(p.unimodal['text']) == {'bad', 'good'}
    pytest.importorskip('onnxruntime'); pytest.importorskip('onnxscript')
    export_onnx(two_class, tmp_path/'onnx')
    assert json.loads((tmp_path/'onnx'/'export.json').read_text())['labels'] == ['bad', 'good']
    q = Predictor.from_pretrained(tmp_path/'onnx', backend='onnxruntime').predict(text='what a lovely day')
    assert list(q.probs) == list(p.probs)
    np.testing.assert_allclose(list(q.probs.values()), list(p.probs.values()), atol=1e-4)


def test_the_server_answers_with_the_model_s_names(two_class):
    pytest.importorskip('litserve'); httpx = pytest.importorskip('httpx')
    from mmsent.serve import running_server
    with running_server(two_class, log=two_class.parent/'server.log') as url:
        r = httpx.post(f'{url}/predict', json={'text': 'what a lovely day'}, timeout=60)
    assert r.status_code == 200, r.text
    assert set(r.json()['probs']) == {'bad', 'good'}


def test_labels_give_five_classes_to_data_that_shows_three(data, tmp_path):
    stars = '1 star,2 stars,3 stars,4 stars,5 stars'
    r = cli('mmsent_train', '--dataset', 'manifest', '--data_root', data/'stars.csv', '--labels', stars, '--class_weights', '1,1,1,1,1',
            '--output_dir', tmp_path/'m5', '--log_dir', tmp_path/'m5'/'logs', *FAST)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((tmp_path/'m5'/'end_to_end_multimodal_best'/'config.json').read_text())
    assert cfg['labels'] == stars.split(',') and len(cfg['prior']) == 5 and cfg['prior'][1] == cfg['prior'][3] == 0.0


@pytest.mark.parametrize('args, says', [
    (['--labels', 'bad'], "argument --labels: needs at least two class names"),
    (['--labels', 'good,bad,Good'], "argument --labels: 'Good' appears twice"),
    (['--labels', 'good,ugly'], "two.csv:3: unknown label 'bad': expected one of good, ugly"),
    (['--class_weights', '1,2,3', '--labels', 'bad,good'], "argument --class_weights: must be 'balanced' or 2 positive numbers"),
    (['--class_weights', '1,2,3'], "--class_weights has 3 numbers but the data has 2 classes (bad, good)"),
    (['--task', 'regression', '--labels', 'bad,good'], "argument --labels: apply to classification"),
    (['--target', 'emotion'], "argument --target: emotion is for --dataset meld"),
])
def test_bad_label_options_are_one_line_and_exit_2(data, tmp_path, args, says):
    r = cli('mmsent_train', '--dataset', 'manifest', '--data_root', data/'two.csv', '--output_dir', tmp_path/'o', *FAST, *args)
    assert r.returncode == 2 and says in r.stderr, r.stderr[-2000:]
    errors = [l for l in r.stderr.splitlines() if 'error' in l]   # the run's first log line may come before
    assert 'Traceback' not in r.stderr and len(errors) == 1 and says in errors[0], r.stderr


def test_resume_refuses_data_whose_classes_changed(data, tmp_path):
    import shutil
    manifest = shutil.copy(data/'two.csv', data/'resume.csv')
    r = cli('mmsent_train', '--dataset', 'manifest', '--data_root', manifest, '--output_dir', tmp_path/'run', '--save_every', '1', *FAST[:-1], '2')
    assert r.returncode == 0, r.stderr[-3000:]
    rows = Path(manifest).read_text().splitlines()
    Path(manifest).write_text('\n'.join([rows[0], rows[1].replace(',bad,', ',awful,').replace(',good,', ',awful,'), *rows[2:]]) + '\n')
    r = cli('mmsent_train', '--resume', tmp_path/'run'/'end_to_end_multimodal_epoch_1', '--output_dir', tmp_path/'run', '--no_progress')
    assert r.returncode != 0 and "its classes are bad, good, the data's are awful, bad, good" in r.stderr, r.stderr[-2000:]
    assert 'Traceback' not in r.stderr and len([l for l in r.stderr.splitlines() if 'error' in l]) == 1, r.stderr


def test_meld_emotions_through_check_data(tmp_path):
    from mmsent.datasets import MELD_EMOTIONS, write_meld_fixture
    meld = write_meld_fixture(tmp_path/'MELD')
    r = cli('mmsent_check_data', '--dataset', 'meld', '--data_root', meld, '--target', 'emotion', '--split', 'train', '--json')
    rep = json.loads(r.stdout)['train']
    assert set(rep['labels']) <= set(MELD_EMOTIONS) and {'joy', 'anger', 'neutral'} <= set(rep['labels']), rep['labels']
    d = rep['dialogues']   # grouped by Dialogue_ID, ordered by Utterance_ID, with the speaker
    assert d['duplicate_turns'] == [] and d['outside'] == 0 and d['utterances'] == rep['rows'] and d['count'] >= 2 and d['speakers'] >= 1, d
    r = cli('mmsent_check_data', '--dataset', 'meld', '--data_root', meld, '--target', 'emotion', '--split', 'train')
    assert f"dialogues: {d['count']} ({d['utterances']} utterances" in r.stdout and 'duplicate turns: 0' in r.stdout, r.stdout
    r = cli('mmsent_check_data', '--dataset', 'meld', '--data_root', meld, '--target', 'joy', '--split', 'train')
    assert r.returncode == 1 and "unknown --target 'joy': use sentiment or emotion" in r.stderr and 'Traceback' not in r.stderr


def test_distillation_needs_the_teacher_s_classes_and_works_for_regression(data, tmp_path):
    "A teacher of other classes is refused in one line; a regression teacher distils into a regression student (the squared score difference)."
    import torch
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.synth import synthesize
    from mmsent.train import TrainConfig, train
    kw = dict(epochs=1, batch_size=16, max_audio_seconds=2.0, progress=False, max_train_steps=2)
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="predicts negative, neutral, positive .classification. but the student bad, good"):
        train(TrainConfig(dataset='manifest', data_root=str(data/'two.csv'), output_dir=str(tmp_path/'a'), log_dir=str(tmp_path/'a'), **kw),
              teacher_model=EndToEndMultiModalModel.from_preset('tiny'))
    synthesize(tmp_path/'reg', n=60, seed=1, task='regression')
    res = train(TrainConfig(data_root=str(tmp_path/'reg'), task='regression', output_dir=str(tmp_path/'b'), log_dir=str(tmp_path/'b'), **kw),
                teacher_model=EndToEndMultiModalModel.from_preset('tiny', task='regression'))
    rec = res['history'][-1]
    assert np.isfinite(rec['train_kd_loss']) and rec['train_kd_loss'] > 0
