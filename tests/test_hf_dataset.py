"""`--dataset hf`: a Hugging Face dataset saved with `save_to_disk` (a DatasetDict with text, Audio and Image cells whose
bytes are stored in the dataset, and a 2-class ClassLabel) is checked by `mmsent_check_data`, refused by `mmsent_train`
while one clip is unreadable, trained with `--skip_bad` under the ClassLabel's own names, and evaluated."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

datasets = pytest.importorskip('datasets')

BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
FAST = ['--no_progress', '--max_audio_seconds', '2', '--batch_size', '8', '--epochs', '1']
NAMES = ('calm', 'tense')


def cli(cmd, *args):
    return subprocess.run([str(BIN/cmd), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=900)


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    "The fixture set with 2 classes, and a copy whose train[1] audio cell holds bytes that are not audio."
    from mmsent.datasets import write_hf_fixture
    d = tmp_path_factory.mktemp('hf')
    good = write_hf_fixture(d/'good', labels=NAMES, n=8)
    dd = datasets.load_from_disk(str(good))
    tr = dd['train'].cast_column('audio', datasets.Audio(decode=False))
    dd['train'] = tr.map(lambda a, i: {'audio': {'bytes': b'not audio' if i == 1 else a['bytes'], 'path': a['path']}}, input_columns='audio', with_indices=True)
    dd.save_to_disk(str(d/'bad'))
    return d


def test_check_data_names_the_bad_cell(saved):
    r = cli('mmsent_check_data', '--dataset', 'hf', '--data_root', saved/'bad', '--split', 'train', '--json')
    assert r.returncode == 1, r.stderr[-2000:]
    rep = json.loads(r.stdout)['train']
    assert rep['rows'] == 8 and rep['unusable'] == 1 and rep['labels'] == dict(calm=4, tense=4), rep
    assert [(b['id'], b['field'], b['reason'].split(':')[0]) for b in rep['bad_files']] == [('train[1]', 'audio_path', 'unreadable')]
    r = cli('mmsent_check_data', '--dataset', 'hf', '--data_root', saved/'good')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_train_refuses_then_skips_the_bad_clip_and_keeps_the_classlabel_names(saved, tmp_path):
    r = cli('mmsent_train', '--dataset', 'hf', '--data_root', saved/'bad', '--output_dir', tmp_path/'refused', *FAST)
    assert r.returncode != 0 and 'Traceback' not in r.stderr and 'train[1]: ' in r.stderr, r.stderr[-2000:]
    r = cli('mmsent_train', '--dataset', 'hf', '--data_root', saved/'bad', '--skip_bad', '--output_dir', tmp_path/'m', *FAST)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path/'m'/'data_report_train.json').read_text())
    assert [b['id'] for b in report['dropped_samples']] == ['train[1]'], report
    model = tmp_path/'m'/'end_to_end_multimodal_best'
    assert json.loads((model/'config.json').read_text())['id2label'] == {'0': 'calm', '1': 'tense'}
    r = cli('mmsent_eval', '--model', model, '--dataset', 'hf', '--data_root', saved/'good', '--out', tmp_path/'eval', '--no_progress')
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path/'eval'/'metrics.json').read_text())
    assert list(rep['fused']['per_class']) == list(NAMES) and rep['fused']['n'] == 8, rep['fused']


def test_a_folder_not_written_by_save_to_disk_is_one_line(tmp_path):
    (tmp_path/'x').mkdir()
    r = cli('mmsent_train', '--dataset', 'hf', '--data_root', tmp_path/'x', '--output_dir', tmp_path/'o', *FAST)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'is not a dataset saved with save_to_disk' in r.stderr, r.stderr[-2000:]
