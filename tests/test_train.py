"Training as a user runs it: the CLI, kill -9 and resume, two processes, bf16 on CPU, a MELD fixture with --skip_bad, the base preset."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
FAST = ['--no_progress', '--max_audio_seconds', '2', '--batch_size', '8']


def run(args, cwd, **kw):
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
    return subprocess.run([str(BIN/'mmsent_train'), *args], cwd=cwd, capture_output=True, text=True, env=env, **kw)


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    from mmsent.synth import synthesize
    d = tmp_path_factory.mktemp('synth')
    synthesize(d, n=160, seed=3)
    return d


def history(out):
    return json.loads((Path(out)/'training_history_end_to_end.json').read_text())['epochs']


@pytest.mark.numerics
@pytest.mark.parametrize('order', [['--epochs', '3'], ['--epochs', '2', '--group_by_length', '--max_audio_seconds', '4']], ids=['shuffled', 'by_length'])
def test_kill_and_resume_matches_uninterrupted(synth, tmp_path, order):
    "kill -9 mid-epoch, resume from the last epoch checkpoint: the same history and weights as the uninterrupted run (batches by length too)."
    args = ['--data_root', str(synth), '--save_every', '1', '--learning_rate', '1e-3', *FAST, *order]
    epochs = int(order[1])
    a = run([*args, '--output_dir', 'a', '--log_dir', 'a/logs'], tmp_path)
    assert a.returncode == 0, a.stderr
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
    p = subprocess.Popen([str(BIN/'mmsent_train'), *args, '--output_dir', 'b', '--log_dir', 'b/logs'], cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    ckpt1, ckpt2 = tmp_path/'b'/'end_to_end_multimodal_epoch_1', tmp_path/'b'/'end_to_end_multimodal_epoch_2'
    deadline = time.time() + 300
    while not (ckpt1/'trainer_state.json').exists():
        assert p.poll() is None and time.time() < deadline, 'training ended before its first checkpoint'
        time.sleep(0.05)
    time.sleep(0.3)                      # into epoch 2
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert not (ckpt2/'trainer_state.json').exists(), 'the kill came too late to be mid-epoch'
    assert len(history(tmp_path/'b')) == 1
    r = run(['--resume', str(ckpt1), '--no_progress'], tmp_path)
    assert r.returncode == 0, r.stderr
    ha, hb = history(tmp_path/'a'), history(tmp_path/'b')
    assert [e['epoch'] for e in hb] == list(range(1, epochs + 1))
    for ea, eb in zip(ha, hb):
        for k in ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'val_weighted_f1'):
            assert eb[k] == pytest.approx(ea[k], rel=1e-5, abs=1e-6), (ea['epoch'], k, ea[k], eb[k])
        assert eb['learning_rates'] == pytest.approx(ea['learning_rates'])
    from safetensors.torch import load_file
    wa = load_file(str(tmp_path/'a'/f'end_to_end_multimodal_epoch_{epochs}'/'model.safetensors'))
    wb = load_file(str(tmp_path/'b'/f'end_to_end_multimodal_epoch_{epochs}'/'model.safetensors'))
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-5


RANK_SCRIPT = '''
import json, os, sys, torch
from safetensors.torch import save_file
from mmsent.train import train, TrainConfig
kw = {**dict(epochs=1, batch_size=8, max_audio_seconds=2.0, progress=False, device='cpu'), **json.loads(sys.argv[3])}
res = train(TrainConfig(data_root=sys.argv[1], output_dir=sys.argv[2], log_dir=sys.argv[2] + '/logs', **kw))
m = res['model']
save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{sys.argv[2]}/rank{os.environ['RANK']}.safetensors")
'''


def torchrun_2(synth, tmp_path, port, **kw):
    "Train under `torchrun --nproc_per_node 2` (gloo), each rank saving its final weights."
    (tmp_path/'rank_train.py').write_text(RANK_SCRIPT)
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
    r = subprocess.run([str(BIN/'torchrun'), '--nproc_per_node', '2', '--master_port', str(port), str(tmp_path/'rank_train.py'),
                        str(synth), str(tmp_path/'out'), json.dumps(kw)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def test_two_process_cpu_run_keeps_ranks_identical(synth, tmp_path):
    torchrun_2(synth, tmp_path, 29533)
    assert '2 process(es)' in (tmp_path/'out'/'logs'/'training_end_to_end.log').read_text()
    from safetensors.torch import load_file
    w0, w1 = load_file(str(tmp_path/'out'/'rank0.safetensors')), load_file(str(tmp_path/'out'/'rank1.safetensors'))
    assert w0.keys() == w1.keys()
    assert all((w0[k] == w1[k]).all() for k in w0)
    init = __import__('mmsent.model', fromlist=['x']).EndToEndMultiModalModel.from_pretrained(tmp_path/'out'/'end_to_end_multimodal_best')
    assert all((init.state_dict()[k] == w0[k]).all() for k in w0)   # the saved best model is the trained one


def test_two_process_lora(synth, tmp_path):
    "LoRA under DDP: ranks stay identical and the adapters learn (their B matrices start at zero)."
    pytest.importorskip('peft')
    torchrun_2(synth, tmp_path, 29535, epochs=1, lora_r=2, learning_rate=1e-3)
    from safetensors.torch import load_file
    w0, w1 = load_file(str(tmp_path/'out'/'rank0.safetensors')), load_file(str(tmp_path/'out'/'rank1.safetensors'))
    assert w0.keys() == w1.keys() and all((w0[k] == w1[k]).all() for k in w0)
    assert any(w0[k].abs().sum() > 0 for k in w0 if 'lora_B' in k)


def test_two_process_gradual_unfreezing(synth, tmp_path):
    "Frozen encoders in epoch 1, unfrozen (top layer) in epoch 2, under DDP: ranks stay identical and exactly the right weights move."
    torchrun_2(synth, tmp_path, 29534, epochs=2, freeze=True, unfreeze_epoch=2, unfreeze_top_k=1, save_every=1, learning_rate=1e-3)
    from safetensors.torch import load_file
    w0, w1 = load_file(str(tmp_path/'out'/'rank0.safetensors')), load_file(str(tmp_path/'out'/'rank1.safetensors'))
    assert all((w0[k] == w1[k]).all() for k in w0)
    e1 = load_file(str(tmp_path/'out'/'end_to_end_multimodal_epoch_1'/'model.safetensors'))
    moved = {k for k in w0 if not torch_equal(e1[k], w0[k])}
    assert any(k.startswith('text_model.encoder.encoder.layer.1.') for k in moved)         # the top layer trained in epoch 2
    assert not any(k.startswith('text_model.encoder.encoder.layer.0.') for k in moved)     # the one below stayed frozen
    assert not any('feature_extractor' in k for k in moved)                                # and Wav2Vec2's convolutions
    lrs = [e['learning_rates'] for e in history(tmp_path/'out')]   # one linear decay over both epochs, whatever the process count:
    assert lrs[0] == pytest.approx([0.5e-3]*4, rel=0.1) and lrs[1] == [0.0]*4   # halfway after epoch 1, zero at the end
    assert '2 process(es)' in (tmp_path/'out'/'logs'/'training_end_to_end.log').read_text()


def torch_equal(a, b): return bool((a == b).all())


def test_bf16_autocast_on_cpu(synth, tmp_path):
    r = run(['--data_root', str(synth), '--epochs', '1', '--precision', 'bf16', '--output_dir', 'o', '--log_dir', 'l', *FAST], tmp_path)
    assert r.returncode == 0, r.stderr
    h = history(tmp_path/'o')
    assert h[0]['train_loss'] == h[0]['train_loss'] and h[0]['val_accuracy'] >= 0   # finite, written
    assert 'precision bf16' in (tmp_path/'l'/'training_end_to_end.log').read_text()


def test_meld_fixture_with_skip_bad(tmp_path):
    from mmsent.datasets import write_meld_fixture
    meld = write_meld_fixture(tmp_path/'MELD')
    bad = run(['--dataset', 'meld', '--data_root', str(meld), '--epochs', '1', '--output_dir', 'o', '--log_dir', 'l', *FAST], tmp_path)
    assert bad.returncode == 2
    assert 'dia1_utt1.mp4' in bad.stderr and '--skip_bad' in bad.stderr
    ok = run(['--dataset', 'meld', '--data_root', str(meld), '--epochs', '1', '--skip_bad', '--output_dir', 'o', '--log_dir', 'l', *FAST], tmp_path)
    assert ok.returncode == 0, ok.stderr
    rep = json.loads((tmp_path/'o'/'data_report_train.json').read_text())
    assert rep['dropped'] == 3 and rep['dropped_by_reason'] == {'missing file': 1, 'unreadable': 1, 'empty file': 1}
    assert (tmp_path/'o'/'end_to_end_multimodal_best'/'model.safetensors').exists()


def test_bad_arguments_are_clear_errors(tmp_path):
    r = run(['--precision', 'fp8'], tmp_path)
    assert r.returncode == 2 and "argument --precision: must be auto, fp32, bf16 or fp16, got 'fp8'" in r.stderr
    r = run(['--dataset', 'meld'], tmp_path)
    assert r.returncode == 2 and 'argument --data_root: is required for meld' in r.stderr
    r = run(['--task', 'ranking'], tmp_path)
    assert r.returncode == 2 and 'argument --task: must be one of' in r.stderr
    r = run(['--class_weights', '1,2'], tmp_path)
    assert r.returncode == 2 and "argument --class_weights: must be 'balanced' or 3 positive numbers" in r.stderr
    r = run(['--seeds', '1', '1'], tmp_path)
    assert r.returncode == 2 and '--seeds has repeats' in r.stderr


def test_seeds_write_a_results_table(tmp_path):
    "`--seeds 1 2 3` on a small synthetic regression set: a run per seed, and results.json/.md whose mean and std follow from the per-seed values."
    from mmsent.synth import synthesize
    from mmsent.metrics import RESULT_COLUMNS
    import numpy as np
    synthesize(tmp_path/'data', n=120, seed=4, task='regression')
    r = run(['--data_root', 'data', '--task', 'regression', '--epochs', '1', '--seeds', '1', '2', '3', '--output_dir', 'o', '--log_dir', 'l', *FAST], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path/'o').iterdir()) == ['results.json', 'results.md', 'seed_1', 'seed_2', 'seed_3']
    res = json.loads((tmp_path/'o'/'results.json').read_text())
    assert res['task'] == 'regression' and res['columns'] == list(RESULT_COLUMNS['regression']) and res['protocol']['seeds'] == [1, 2, 3]
    md = (tmp_path/'o'/'results.md').read_text()
    for k in res['columns']:
        v = np.array([res['per_seed'][s][k] for s in ('1', '2', '3')], dtype=float)
        assert res['summary'][k]['mean'] == pytest.approx(v.mean()) and res['summary'][k]['std'] == pytest.approx(v.std(ddof=1)), k
    mae = res['summary']['MAE']
    assert f"{mae['mean']:.4f} ± {mae['std']:.4f}" in md and '| mean ± std (3 seeds) |' in md
    for s in (1, 2, 3): assert (tmp_path/'o'/f'seed_{s}'/'end_to_end_multimodal_best'/'model.safetensors').exists()


@pytest.mark.slow
def test_base_preset_two_steps_with_gradient_checkpointing(synth, tmp_path):
    r = run(['--data_root', str(synth), '--preset', 'base', '--random_init', '--grad_checkpointing', '--epochs', '1', '--max_train_steps', '2',
             '--batch_size', '2', '--max_eval_batches', '1', '--max_audio_seconds', '1', '--no_progress', '--output_dir', 'o', '--log_dir', 'l'], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (tmp_path/'l'/'training_end_to_end.log').read_text()
    assert '"preset": "base"' in log and 'steps 2' in log
    cfg = json.loads((tmp_path/'o'/'end_to_end_multimodal_best'/'config.json').read_text())
    assert cfg['encoder_configs']['text']['hidden_size'] == 768


@pytest.mark.slow
def test_main_job_defaults_reach_the_fusion_target(tmp_path):
    "`mmsent_train` with no arguments (the README's main job): the fused model beats every single modality by 15+ points; `mmsent_eval` on it."
    env = dict(os.environ, HF_HUB_OFFLINE='1', MMSENT_CACHE=str(tmp_path/'cache'))   # generates the synthetic set itself
    r = subprocess.run([str(BIN/'mmsent_train'), '--no_progress'], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    h = history(tmp_path/'models')
    assert len(h) == 20
    best = max(h, key=lambda e: e['val_accuracy'])
    assert best['val_accuracy'] >= 0.90, [e['val_accuracy'] for e in h]
    for m, acc in best['val_modality_accuracy'].items():   # each auxiliary head, on the same validation pass
        assert acc <= best['val_accuracy'] - 0.15, (m, acc, best['val_accuracy'])
    assert (tmp_path/'models'/'end_to_end_multimodal_best'/'model.safetensors').exists()
    assert (tmp_path/'logs'/'training_end_to_end.log').exists()
    # then evaluate it as the tutorial does, on a held-out synthetic set (another seed, every split)
    r = subprocess.run([str(BIN/'mmsent_synth'), '--out', 'heldout', '--n', '1200', '--seed', '7'], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(BIN/'mmsent_eval'), '--model', 'models/end_to_end_multimodal_best', '--data_root', 'heldout', '--split', 'all',
                        '--out', 'eval', '--no_progress'], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '## Modality ablation' in r.stdout
    m = json.loads((tmp_path/'eval'/'metrics.json').read_text())
    assert m['fused']['n'] == 1200 and m['fused']['accuracy'] >= 0.90
    single = {row['hidden'][0]: row['delta_accuracy'] for row in m['ablation'] if len(row['hidden']) == 1}
    assert min(single, key=single.get) == 'text', single   # the synthetic set's most informative modality costs the most
    assert all(d < 0 for d in single.values()), single
    # trained with modality dropout, the fused model given one modality does as well as that modality's own head (within 3 points)
    assert m['modality_dropout'] > 0 and 'trained with modality dropout' in r.stdout
    for row in (row for row in m['ablation'] if len(row['kept']) == 1):
        assert row['accuracy'] >= row['head_accuracy'] - 0.03, row
    for f in ('metrics.md', 'predictions.csv', 'shapley.csv', 'attention.json', 'attention.csv', 'confusion_matrix.png', 'attention.png', 'ablation.png',
              'shapley.png', 'training_curves.png'):
        assert (tmp_path/'eval'/f).stat().st_size > 0, f


# --- issue 16: step checkpoints, rotation, exact mid-epoch resume, interruptions, locks, a full disk, corrupt checkpoints ---
# The runner does what `mmsent_train` does with the errors of `train` (TrainingInterrupted -> its message and exit code,
# CheckpointSaveError -> one line, exit 1), given the TrainConfig as JSON (mmsent_train takes the same fields as flags).
RUNNER = '''
import json, sys
from mmsent.train import train, TrainConfig, TrainingInterrupted, CheckpointSaveError
try: train(TrainConfig(**json.loads(sys.argv[1])))
except TrainingInterrupted as e: print(f"mmsent_train: {e}", file=sys.stderr); sys.exit(e.exit_code)
except CheckpointSaveError as e: print(f"mmsent_train: error: {e}", file=sys.stderr); sys.exit(1)
except ValueError as e: print(f"mmsent_train: error: {e}", file=sys.stderr); sys.exit(2)
'''
STEPS = dict(epochs=2, batch_size=8, learning_rate=1e-3, max_audio_seconds=2.0, progress=False, save_steps=4, save_total_limit=2)


def runner(cfg, cwd, popen=False):
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-c', RUNNER, json.dumps(cfg)]
    if popen: return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)


def wait_for(path, p, timeout=300):
    deadline = time.time() + timeout
    while not Path(path).exists():
        assert p.poll() is None and time.time() < deadline, f'the run ended before {path} appeared'
        time.sleep(0.02)


def weights(d):
    from safetensors.torch import load_file
    return load_file(str(Path(d)/'model.safetensors'))


def assert_same_run(a, b):
    "Bit for bit the same final weights, and the same epoch records."
    wa, wb = weights(Path(a)/'end_to_end_multimodal_epoch_2'), weights(Path(b)/'end_to_end_multimodal_epoch_2')
    assert wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)
    for ea, eb in zip(history(a), history(b), strict=True):
        for k in ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'learning_rates'): assert ea[k] == eb[k], (ea['epoch'], k)


@pytest.fixture(scope='module')
def reference(synth, tmp_path_factory):
    "An uninterrupted run with a step checkpoint every 4 steps, keeping 2."
    d = tmp_path_factory.mktemp('ref')
    r = runner(dict(STEPS, data_root=str(synth), output_dir='ref', log_dir='ref/logs'), d)
    assert r.returncode == 0, r.stderr[-3000:]
    return d/'ref'


def test_save_total_limit_keeps_the_newest_checkpoints_and_the_best(reference):
    names = sorted(p.name for p in reference.iterdir() if p.is_dir())
    assert names == ['end_to_end_multimodal_best', 'end_to_end_multimodal_epoch_2', 'end_to_end_multimodal_step_32', 'logs'], names
    card = json.loads((reference/'end_to_end_multimodal_best'/'config.json').read_text())
    assert card['epoch'] == 1 and card['metrics']['epoch'] == 1 and card['training']['save_steps'] == 4
    assert card['command'].startswith('mmsent_train ') and '--save_steps 4' in card['command']
    assert card['data']['train_samples'] + card['data']['val_samples'] < 160 and card['data']['dataset'] == 'synth'


@pytest.mark.numerics
def test_kill_after_a_step_checkpoint_resumes_bit_equal(synth, reference, tmp_path):
    "kill -9 just after a mid-epoch step checkpoint; `resume latest` ends with the uninterrupted run's weights, bit for bit."
    p = runner(dict(STEPS, data_root=str(synth), output_dir='b', log_dir='b/logs'), tmp_path, popen=True)
    wait_for(tmp_path/'b'/'end_to_end_multimodal_step_4'/'trainer_state.json', p)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    from mmsent.train import latest_checkpoint
    st = json.loads((latest_checkpoint(tmp_path/'b')/'trainer_state.json').read_text())
    assert st['batches'] > 0, 'the kill came too late to be mid-epoch'
    r = runner(dict(resume='latest', output_dir='b', progress=False), tmp_path)   # the dead run's lock is taken over
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'taking over the lock' in r.stderr
    assert_same_run(reference, tmp_path/'b')


@pytest.mark.numerics
def test_sigint_saves_a_checkpoint_and_resume_latest_finishes_the_run(synth, reference, tmp_path):
    p = runner(dict(STEPS, data_root=str(synth), output_dir='c', log_dir='c/logs'), tmp_path, popen=True)
    wait_for(tmp_path/'c'/'end_to_end_multimodal_step_8'/'trainer_state.json', p)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 130, err[-3000:]
    assert 'Traceback' not in err
    assert 'resume with: mmsent_train --resume latest --output_dir c' in err.splitlines()[-1]
    r = run(['--resume', 'latest', '--output_dir', 'c', '--no_progress'], tmp_path)   # the command it printed
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_run(reference, tmp_path/'c')


def test_resume_on_other_kernels_says_it_is_not_bit_for_bit(reference, tmp_path):
    "A checkpoint written with other kernels (here: another thread count) resumes, with one warning that the result is equal within rounding."
    shutil.copytree(reference/'end_to_end_multimodal_step_32', tmp_path/'o'/'end_to_end_multimodal_step_32')
    st = tmp_path/'o'/'end_to_end_multimodal_step_32'/'trainer_state.json'
    s = json.loads(st.read_text()); s['kernels']['threads'] = 99; st.write_text(json.dumps(s))
    r = runner(dict(resume='latest', output_dir='o', progress=False), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "'threads': 99" in r.stderr and 'within rounding of an uninterrupted one, not bit for bit' in r.stderr, r.stderr[-3000:]


def test_a_second_run_into_a_busy_output_dir_stops_at_once(synth, tmp_path):
    p = subprocess.Popen([str(BIN/'mmsent_train'), '--data_root', str(synth), '--epochs', '50', '--output_dir', 'o', '--log_dir', 'l', *FAST], cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1'))
    try:
        wait_for(tmp_path/'o'/'.mmsent_train.lock', p)
        t = time.time()
        r = run(['--data_root', str(synth), '--epochs', '1', '--output_dir', 'o', '--log_dir', 'l2', *FAST], tmp_path)
        assert r.returncode == 2 and f'output_dir o is in use by another training run (pid {p.pid}' in r.stderr, r.stderr[-2000:]
        assert len(r.stderr.strip().splitlines()) == 1 and time.time() - t < 60
    finally: p.kill(); p.wait()
    # the killed run's lock is stale: a new run (replacing whatever it left) takes it over
    r = runner(dict(data_root=str(synth), epochs=1, batch_size=8, max_audio_seconds=2.0, progress=False, max_train_steps=1, output_dir='o',
                    log_dir='l3', overwrite_output_dir=True), tmp_path)
    assert r.returncode == 0 and 'taking over the lock' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'o'/'.mmsent_train.lock').exists()


def test_corrupt_optimizer_state_on_resume_is_one_line(reference, tmp_path):
    import shutil
    ck = tmp_path/'ck'; shutil.copytree(reference/'end_to_end_multimodal_epoch_2', ck)
    (ck/'optimizer.safetensors').write_bytes((ck/'optimizer.safetensors').read_bytes()[:4096])
    r = run(['--resume', str(ck), '--no_progress'], tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert f"{ck/'optimizer.safetensors'} is corrupt or truncated" in r.stderr


DISK_FULL = '''
import json, os, sys
from mmsent.train import train, TrainConfig, CheckpointSaveError
def fill(epoch, rec):   # after epoch 1 has saved its best model, fill the disk but for a few kB
    st = os.statvfs(sys.argv[2]); free = st.f_bavail*st.f_frsize
    with open(os.path.join(sys.argv[2], 'filler'), 'wb') as f: f.write(b'0'*(free - 16384))
try: train(TrainConfig(data_root=sys.argv[1], output_dir=sys.argv[2], log_dir='logs', epochs=2, batch_size=8, max_audio_seconds=2.0, progress=False,
                       metric='loss', save_every=1), on_epoch_end=fill)
except CheckpointSaveError as e: print(f"mmsent_train: error: {e}", file=sys.stderr); sys.exit(1)
'''


def test_disk_full_while_saving_keeps_the_best_model(synth, tmp_path):
    disk = tmp_path/'disk'; disk.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', str(disk)], capture_output=True).returncode:
        pytest.skip('mounting a tmpfs is not allowed here')
    try:
        r = subprocess.run([sys.executable, '-c', DISK_FULL, str(synth), str(disk)], cwd=tmp_path, capture_output=True, text=True,
                           env=dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1'))
        assert r.returncode == 1, r.stderr[-3000:]
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith(f'mmsent_train: error: could not save {disk}/') and 'disk is full' in line, line
        from mmsent.model import EndToEndMultiModalModel
        EndToEndMultiModalModel.from_pretrained(disk/'end_to_end_multimodal_best')   # intact: its SHA-256 checks
        assert json.loads((disk/'end_to_end_multimodal_best'/'config.json').read_text())['epoch'] == 1
        assert not [p.name for p in disk.iterdir() if p.name.startswith('.end_to_end')], list(disk.iterdir())   # no temporary folders left
        assert not (disk/'.mmsent_train.lock').exists()
    finally: subprocess.run(['umount', '-l', str(disk)])   # lazy: the loaded model may still map its file
