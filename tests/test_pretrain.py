"Pre-training as a user runs it: mmsent_pretrain on a label-free manifest, kill -9 and exact resume on CPU, --init_from in mmsent_train."
import csv, json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
ARGS = ['--epochs', '2', '--batch_size', '8', '--max_audio_seconds', '1', '--save_steps', '2', '--no_progress', '--max_eval_batches', '1', '--no_linear_probe']


def cmd(tool, cwd):
    "The console script, or (before it is installed) a script file that calls the same function, as a console script does."
    if (BIN/tool).exists(): return [str(BIN/tool)]
    (Path(cwd)/f'{tool}.py').write_text(f'from mmsent.{tool.split("_")[1]} import {tool}\n{tool}()\n')
    return [sys.executable, str(Path(cwd)/f'{tool}.py')]


def run(tool, args, cwd, popen=False):
    c = [*cmd(tool, cwd), *map(str, args)]
    if popen: return subprocess.Popen(c, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    return subprocess.run(c, cwd=cwd, capture_output=True, text=True, env=ENV, timeout=600)


@pytest.fixture(scope='module')
def unlabeled(tmp_path_factory):
    "A small synthetic set, and its manifest without the label column."
    from mmsent.synth import synthesize
    d = tmp_path_factory.mktemp('clips')
    synthesize(d, n=64, seed=5)
    with open(d/'manifest.csv', newline='') as f: rows = list(csv.DictReader(f))
    keep = [c for c in rows[0] if c not in ('label', 'score')]
    with open(d/'clips.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, keep, extrasaction='ignore'); w.writeheader(); w.writerows(rows)
    return d/'clips.csv'


def weights(d):
    from safetensors.torch import load_file
    return {**load_file(str(Path(d)/'model.safetensors')), **{f'heads.{k}': v for k, v in load_file(str(Path(d)/'contrastive_heads.safetensors')).items()}}


def wait_for(path, p, timeout=300):
    deadline = time.time() + timeout
    while not Path(path).exists():
        assert p.poll() is None and time.time() < deadline, f'the run ended before {path} appeared: {p.stderr.read()[-2000:] if p.poll() is not None else ""}'
        time.sleep(0.02)


@pytest.fixture(scope='module')
def reference(unlabeled, tmp_path_factory):
    "An uninterrupted pre-training run on the label-free manifest."
    d = tmp_path_factory.mktemp('ref')
    r = run('mmsent_pretrain', ['--dataset', 'manifest', '--data_root', unlabeled, *ARGS, '--output_dir', 'ref', '--log_dir', 'ref/logs'], d)
    assert r.returncode == 0, r.stderr[-3000:]
    return d/'ref'


def test_pretrain_writes_the_model_history_and_log(reference):
    names = sorted(p.name for p in reference.iterdir())
    assert 'pretrained_multimodal' in names and 'pretraining_history.json' in names and 'pretrain_multimodal_epoch_2' in names, names
    h = json.loads((reference/'pretraining_history.json').read_text())['epochs']
    assert [e['epoch'] for e in h] == [1, 2]
    assert h[-1]['val_linear_probe_accuracy'] is None and 'text_to_audio' in h[-1]['val_retrieval']   # no labels, no probe
    assert (reference/'logs'/'pretraining.log').exists()


@pytest.mark.numerics
def test_kill_after_a_step_checkpoint_resumes_exactly(unlabeled, reference, tmp_path):
    "kill -9 just after a mid-epoch step checkpoint; `--resume latest` ends with the uninterrupted run's weights, bit for bit."
    p = run('mmsent_pretrain', ['--dataset', 'manifest', '--data_root', unlabeled, *ARGS, '--output_dir', 'b', '--log_dir', 'b/logs'], tmp_path, popen=True)
    wait_for(tmp_path/'b'/'pretrain_multimodal_step_2'/'trainer_state.json', p)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    from mmsent.train import latest_checkpoint
    st = json.loads((latest_checkpoint(tmp_path/'b', 'pretrain_multimodal')/'trainer_state.json').read_text())
    assert st['batches'] > 0, 'the kill came too late to be mid-epoch'
    r = run('mmsent_pretrain', ['--resume', 'latest', '--output_dir', 'b', '--no_progress'], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    wa, wb = weights(reference/'pretrain_multimodal_epoch_2'), weights(tmp_path/'b'/'pretrain_multimodal_epoch_2')
    assert wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)
    ha = json.loads((reference/'pretraining_history.json').read_text())['epochs']
    hb = json.loads((tmp_path/'b'/'pretraining_history.json').read_text())['epochs']
    for ea, eb in zip(ha, hb, strict=True):
        for k in ('train_loss', 'val_loss', 'val_retrieval', 'temperature', 'learning_rates'): assert ea[k] == eb[k], (ea['epoch'], k)


def test_init_from_starts_training_from_the_pretrained_encoders(unlabeled, reference, tmp_path):
    "mmsent_train --init_from: the run starts from the pre-trained encoders and records where they came from."
    data = unlabeled.parent
    r = run('mmsent_train', ['--data_root', data, '--init_from', reference/'pretrained_multimodal', '--epochs', '1', '--batch_size', '8',
                             '--max_audio_seconds', '1', '--max_train_steps', '1', '--no_progress', '--output_dir', 'sup', '--log_dir', 'sup/logs'], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    h = json.loads((tmp_path/'sup'/'training_history_end_to_end.json').read_text())
    assert h['init_from'] == str(reference/'pretrained_multimodal')
    card = json.loads((tmp_path/'sup'/'end_to_end_multimodal_best'/'config.json').read_text())
    assert card['init_from'] == str(reference/'pretrained_multimodal') and '--init_from' in card['command']
    assert '--init_from' in (tmp_path/'sup'/'end_to_end_multimodal_best'/'README.md').read_text()


def test_bad_input_is_one_line(unlabeled, tmp_path):
    r = run('mmsent_pretrain', ['--dataset', 'manifest', '--data_root', tmp_path/'missing.csv', '--no_progress'], tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == f'mmsent_pretrain: error: --data_root {tmp_path/"missing.csv"}: no such file or folder', r.stderr
    r = run('mmsent_pretrain', ['--proj_dim', '0'], tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == 'mmsent_pretrain: error: argument --proj_dim: must be >= 1, got 0', r.stderr
    r = run('mmsent_train', ['--init_from', tmp_path/'nope'], tmp_path)
    assert r.returncode == 2 and 'argument --init_from:' in r.stderr and r.stderr.count('\n') == 1, r.stderr


GATHER_SCRIPT = '''
import json, os, sys, torch, torch.distributed as dist, torch.nn.functional as F
from mmsent.pretrain import contrastive_loss
rank, world = int(sys.argv[1]), 2
dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{sys.argv[2]}', rank=rank, world_size=world)
torch.manual_seed(0)
B = 4
emb = {m: F.normalize(torch.randn(world*B, 5), dim=-1) for m in ('text', 'audio', 'visual')}
present = torch.ones(world*B, 3, dtype=torch.bool); present[1, 1] = False; present[6, 2] = False
mine = {m: v[rank*B:(rank + 1)*B].clone().requires_grad_() for m, v in emb.items()}
loss, pairs = contrastive_loss(mine, present[rank*B:(rank + 1)*B], torch.tensor(10.0))
loss.backward()
grads = {m: v.grad.tolist() for m, v in mine.items()}
out = [None]*world; dist.all_gather_object(out, dict(loss=loss.item(), pairs={k: v.item() for k, v in pairs.items()}, grads=grads))
if rank == 0: print(json.dumps(out))
dist.destroy_process_group()
'''


def test_negatives_are_gathered_across_processes(tmp_path):
    "Two processes (gloo): each compares its clips with both processes' clips, and each gets the gradient of the summed loss for its own rows."
    import socket, torch, torch.nn.functional as F
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    (tmp_path/'g.py').write_text(GATHER_SCRIPT)
    ps = [subprocess.Popen([sys.executable, str(tmp_path/'g.py'), str(r), str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
          for r in range(2)]
    outs = [p.communicate(timeout=120) for p in ps]
    assert all(p.returncode == 0 for p in ps), [o[1][-2000:] for o in outs]
    per_rank = json.loads(outs[0][0])
    mods = ('text', 'audio', 'visual')
    torch.manual_seed(0)
    B = 4
    emb = {m: F.normalize(torch.randn(2*B, 5), dim=-1).requires_grad_() for m in mods}
    present = torch.ones(2*B, 3, dtype=torch.bool); present[1, 1] = False; present[6, 2] = False

    def process_loss(r):   # process r: its own clips are the queries, every process's clips the keys
        rows, pairs = slice(r*B, (r + 1)*B), {}
        for a, b in (('text', 'audio'), ('text', 'visual'), ('audio', 'visual')):
            both = present[:, mods.index(a)] & present[:, mods.index(b)]
            keep = both[rows]
            def one_way(q, k):
                logits = (10.0*emb[q][rows] @ emb[k].T).masked_fill(~both[None], float('-inf'))
                return F.cross_entropy(logits[keep], torch.arange(r*B, (r + 1)*B)[keep])
            pairs[f'{a}-{b}'] = (one_way(a, b) + one_way(b, a))/2
        return torch.stack(list(pairs.values())).mean(), pairs

    total = 0
    for r in range(2):
        loss, pairs = process_loss(r)
        assert abs(loss.item() - per_rank[r]['loss']) < 1e-5, r
        assert {k: round(v.item(), 5) for k, v in pairs.items()} == {k: round(v, 5) for k, v in per_rank[r]['pairs'].items()}
        total = total + loss
    total.backward()
    for r in range(2):
        for m in mods:
            assert torch.allclose(torch.tensor(per_rank[r]['grads'][m]), emb[m].grad[r*B:(r + 1)*B], atol=1e-6), (r, m)


def test_two_processes_pretrain(unlabeled, tmp_path):
    "torchrun with two CPU processes: the run completes (the gathered negatives and DDP agree), one history, one model."
    import socket
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    script = cmd('mmsent_pretrain', tmp_path)[-1]   # torchrun runs it with this Python (a console script is a Python file too)
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(port), script,
                        '--dataset', 'manifest', '--data_root', str(unlabeled), '--epochs', '1', '--batch_size', '8', '--max_audio_seconds', '1',
                        '--no_progress', '--device', 'cpu', '--output_dir', 'two', '--log_dir', 'two/logs'],
                       cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '2 process(es)' in (tmp_path/'two'/'logs'/'pretraining.log').read_text()
    h = json.loads((tmp_path/'two'/'pretraining_history.json').read_text())['epochs']
    assert [e['epoch'] for e in h] == [1] and h[0]['val_clips'] == len([1 for l in open(unlabeled) if ',val,' in l])
    # the validation figures are those of the whole split, as one process computes them from the saved model (not each process's share, nor twice the split)
    import torch
    from mmsent.datasets import MultiModalDataset
    from mmsent.encoders import MultiModalProcessor
    from mmsent.pretrain import ContrastiveModel, PretrainCollator, evaluate_representation, unlabeled_records
    d = tmp_path/'two'/'pretrained_multimodal'
    model, proc = ContrastiveModel.from_pretrained(d), MultiModalProcessor.from_pretrained(d)
    ds = MultiModalDataset(unlabeled_records('manifest', unlabeled, 'val'), max_audio_seconds=1.0, modalities=model.modalities)
    ev = evaluate_representation(model, torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=PretrainCollator(proc)))
    assert ev['val_clips'] == h[0]['val_clips'] and abs(ev['val_loss'] - h[0]['val_loss']) < 1e-3, (ev['val_loss'], h[0]['val_loss'])
