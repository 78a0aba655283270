"Distillation, quantization and pruning as a user runs them: mmsent_train a teacher, then mmsent_distill, mmsent_quantize, mmsent_prune."
import json, os, subprocess, sys
from pathlib import Path
import pytest
import torch

BIN = Path(sys.executable).parent
FAST = ['--max_audio_seconds', '2']
BEST = 'end_to_end_multimodal_best'


def run(cmd, *args, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
    return subprocess.run([str(BIN/cmd), *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
    "A synthetic set and a teacher trained on it with mmsent_train."
    from mmsent.synth import synthesize
    d = tmp_path_factory.mktemp('compress')
    synthesize(d/'data', n=150, seed=3)
    r = run('mmsent_train', '--data_root', d/'data', '--epochs', 3, '--batch_size', 16, '--learning_rate', '1e-3', '--output_dir', 'teacher',
            '--log_dir', 'teacher', '--no_progress', *FAST, cwd=d)
    assert r.returncode == 0, r.stderr
    return d


@pytest.mark.slow
def test_distill_cli(teacher):
    d = teacher
    r = run('mmsent_distill', '--teacher', d/'teacher'/BEST, '--student_preset', 'tiny', '--d_model', 32, '--alpha', 0.7, '--temperature', 3,
            '--data_root', d/'data', '--epochs', 2, '--output_dir', 'student', '--log_dir', 'student', '--no_progress', *FAST, cwd=d)
    assert r.returncode == 0, r.stderr
    assert 'student best val accuracy' in r.stdout
    out = d/'student'
    assert {p.name for p in out.iterdir()} >= {BEST, 'end_to_end_multimodal_epoch_2', 'training_history_end_to_end.json', 'training_end_to_end.log'}
    hist = json.loads((out/'training_history_end_to_end.json').read_text())
    assert hist['config']['teacher'] == str(d/'teacher'/BEST) and hist['config']['distill_alpha'] == 0.7
    assert all(e['train_kd_loss'] > 0 for e in hist['epochs'])
    assert 'distilling from teacher' in (out/'training_end_to_end.log').read_text()
    from mmsent.model import EndToEndMultiModalModel
    assert EndToEndMultiModalModel.from_pretrained(out/BEST).config.fusion.d_model == 32
    bad = run('mmsent_distill', '--teacher', d/'no_such_teacher', '--data_root', d/'data', '--epochs', 1, cwd=d)
    assert bad.returncode == 2 and 'no_such_teacher: no such model directory' in bad.stderr, bad.stderr
    same = run('mmsent_distill', '--teacher', d/'teacher'/BEST, '--output_dir', d/'teacher', '--data_root', d/'data', '--epochs', 1, cwd=d)
    assert same.returncode == 2 and 'would overwrite the teacher' in same.stderr, same.stderr


@pytest.mark.slow
def test_quantize_cli(teacher):
    d = teacher
    r = run('mmsent_quantize', '--model', d/'teacher'/BEST, '--out', 'int8', '--data_root', d/'data', '--batch_size', 16, '--repeats', 3, '--force', *FAST, cwd=d)
    assert r.returncode == 0, r.stderr   # --force: the tiny teacher's layers may be too small for int8 to win on this CPU
    rep = json.loads((d/'int8'/'compression_report.json').read_text())
    assert rep['speed']['cpu_capability'] == torch.backends.cpu.get_cpu_capability() and rep['speed']['kernel']
    fp, q = rep['rows']
    assert (fp['model'], q['model']) == ('fp32', 'int8')
    assert q['agreement'] >= 0.9, q                    # int8 predicts what fp32 predicts on most samples
    assert q['size_mb'] < fp['size_mb']
    assert abs(q['accuracy'] - fp['accuracy']) <= 0.1
    from safetensors import safe_open
    with safe_open(str(d/'int8'/'model.safetensors'), 'pt') as f:
        int8 = [k for k in f.keys() if f.get_slice(k).get_dtype() == 'I8']
    assert len(int8) > 20 and all(k.endswith('weight_int8') for k in int8)
    from mmsent.compress import load_quantized, Int8DynamicLinear
    m = load_quantized(d/'int8')
    assert all(isinstance(m.get_submodule(n), Int8DynamicLinear) for n in m.quantized_modules)
    bad = run('mmsent_quantize', '--model', d/'teacher'/BEST, '--out', 'model.pt', '--no_eval', cwd=d)
    assert bad.returncode == 2 and 'looks like a file name' in bad.stderr, bad.stderr
    missing = run('mmsent_quantize', '--model', d/'nope', '--out', 'x', cwd=d)
    assert missing.returncode == 2 and 'nope: no such model directory' in missing.stderr, missing.stderr


@pytest.mark.slow
def test_quantize_cli_refuses_when_int8_is_slower(teacher, monkeypatch, capsys):
    "Where the timing finds int8 slower than fp32, mmsent_quantize writes nothing and exits 3 with one line saying why."
    import mmsent.compress as mc
    monkeypatch.setattr(mc, 'time_linears', lambda shapes, kernels, tokens=128, repeats=3: {'fp32': 1.0, **{k: 2.0 for k in kernels}})
    with pytest.raises(SystemExit) as e: mc.mmsent_quantize(model=str(teacher/'teacher'/BEST), out=str(teacher/'slow'), no_eval=True)
    err = capsys.readouterr().err
    assert e.value.code == 3 and 'int8 is not faster than fp32 on this CPU' in err and '--force' in err, err
    assert not (teacher/'slow').exists()
    mc.mmsent_quantize(model=str(teacher/'teacher'/BEST), out=str(teacher/'forced'), no_eval=True, force=True)   # --force writes it anyway
    assert mc.load_quantized(teacher/'forced').quantized_modules


@pytest.mark.slow
def test_prune_cli(teacher):
    d = teacher
    r = run('mmsent_prune', '--model', d/'teacher'/BEST, '--out', 'pruned', '--sparsity', 0.5, '--sweep', '0,0.9', '--data_root', d/'data',
            '--batch_size', 16, '--repeats', 2, *FAST, cwd=d)
    assert r.returncode == 0, r.stderr
    rep = json.loads((d/'pruned'/'compression_report.json').read_text())
    assert [row['model'] for row in rep['rows']] == ['fp32', 'sparsity 0', 'sparsity 0.5', 'sparsity 0.9']
    assert rep['rows'][1]['agreement'] == 1.0       # sparsity 0 is the original model
    assert [row['encoder_sparsity'] for row in rep['rows'][1:]] == pytest.approx([0.0, 0.5, 0.9], abs=0.01)
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.compress import encoder_linears
    m = EndToEndMultiModalModel.from_pretrained(d/'pruned')   # an ordinary model directory
    for name, lin in encoder_linears(m).items():
        assert (lin.weight == 0).float().mean().item() >= 0.5 - 1/lin.weight.numel(), name
    bad = run('mmsent_prune', '--model', d/'teacher'/BEST, '--out', 'p2', '--sparsity', 1.0, '--no_eval', cwd=d)
    assert bad.returncode == 2 and 'sparsity must be in [0, 1)' in bad.stderr, bad.stderr
