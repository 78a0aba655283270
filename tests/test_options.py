"Options as a user gives them: every TrainConfig field a flag, bad values one clear line before any training, --config files, resume semantics, precision."
import json, logging, os, subprocess, sys, time
from dataclasses import asdict, fields
from pathlib import Path
import pytest

from mmsent.train import TrainConfig, train_parser, mmsent_train, resume_config
from mmsent.compress import distill_parser
from mmsent.core import ConfigError, given_fields
import mmsent.core as core

BIN = Path(sys.executable).parent
# TrainConfig fields that are not options of mmsent_distill: none, all make sense for a student run
DISTILL_SKIP = set()


def run(cmd, args, cwd, **kw):
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
    return subprocess.run([str(BIN/cmd), *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env, **kw)


def test_every_field_is_a_flag():
    names = {f.name for f in fields(TrainConfig)}
    tp, dp = train_parser(), distill_parser()
    assert set(tp.flags) == names
    assert set(dp.flags) == names - DISTILL_SKIP
    opts = {o for a in tp._actions for o in a.option_strings}
    for n in names:   # booleans that default to True are --no_X, the rest --X
        assert (f'--no_{n}' if getattr(TrainConfig, n) is True else f'--{n}') in opts, n
    assert {'--no_progress', '--no_feature_cache', '--config'} <= opts
    assert {'--student_preset', '--alpha', '--temperature', '--teacher'} <= {o for a in dp._actions for o in a.option_strings}


def test_help_is_the_docments():
    h = run('mmsent_train', ['--help'], '.').stdout
    assert 'passes over the training split (default: 20 for tiny' in h and '--seeds' in h and '--config FILE' in h


BAD = [   # (arguments, what the one line must say)
    (['--learning_rate', '-1'], 'argument --learning_rate: must be > 0, got -1'),
    (['--warmup_steps', '-5'], 'argument --warmup_steps: must be >= 0 or unset, got -5'),
    (['--save_every', '0'], 'argument --save_every: must be >= 1, got 0'),
    (['--save_steps', '0'], 'argument --save_steps: must be >= 1 or unset, got 0'),
    (['--save_total_limit', '0'], 'argument --save_total_limit: must be >= 1 or unset, got 0'),
    (['--logging_steps', '0'], 'argument --logging_steps: must be >= 1, got 0'),
    (['--d_model', '30'], 'argument --d_model: 30 must be divisible by n_heads (4)'),
    (['--dropout', '1'], 'argument --dropout: must be in [0, 1), got 1'),
    (['--batch_size', '0'], 'argument --batch_size: must be >= 1, got 0'),
    (['--max_audio_seconds', '0'], 'argument --max_audio_seconds: must be > 0, got 0'),
    (['--synth_n', '10'], 'argument --synth_n: must be >= 50, got 10'),
    (['--report_to', 'foo'], "argument --report_to: must be one of none, tensorboard, wandb, mlflow, all, got 'foo'"),
    (['--report_to', 'mlflow'], 'argument --report_to: mlflow is not installed: pip install mlflow'),
    (['--precision', 'fp8'], "argument --precision: must be auto, fp32, bf16 or fp16, got 'fp8'"),
    (['--epochs', 'three'], "argument --epochs: invalid int value: 'three'"),
    (['--config', 'wrong_type.yaml'], "argument --epochs (from --config wrong_type.yaml): must be an int or null, got 'three'"),
    (['--config', 'list.yaml'], 'argument --config: list.yaml must hold a mapping of option -> value, got a list'),
    (['--config', 'missing.yaml'], 'argument --config: missing.yaml: no such file'),
    (['--config', 'unknown.json'], "argument --config: unknown.json: unknown options ['learning_rat'] (learning_rat: did you mean learning_rate?)"),
    (['--dataset', 'meld'], 'argument --data_root: is required for meld (its folder; for manifest, the .csv/.jsonl file)'),
    (['--frobnicate'], 'unrecognized arguments: --frobnicate'),
]


@pytest.fixture
def configs(tmp_path):
    (tmp_path/'wrong_type.yaml').write_text('epochs: three\n')
    (tmp_path/'list.yaml').write_text('- epochs\n- 3\n')
    (tmp_path/'unknown.json').write_text(json.dumps({'learning_rat': 0.1}))
    return tmp_path


@pytest.mark.parametrize('args,msg', BAD, ids=[' '.join(a) for a, _ in BAD])
def test_bad_flag_is_one_line_before_training(configs, args, msg, capsys, monkeypatch):
    "In process (the command's own function, as its console script calls it): exit status 2, one line, nothing written."
    monkeypatch.chdir(configs)
    with pytest.raises(SystemExit) as e: mmsent_train(args)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert err.splitlines() == [f'mmsent_train: error: {msg}'], err
    assert not (configs/'models').exists() and not (configs/'logs').exists()


@pytest.mark.parametrize('args,msg', [BAD[-1], BAD[-3]], ids=['unknown flag', 'unknown option in a config file'])
def test_the_installed_command_says_one_line_before_training(configs, args, msg):
    "The console script in a fresh process: nothing else on stderr (no warning at import, no traceback), within a minute."
    t = time.time()
    r = run('mmsent_train', args, configs)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [f'mmsent_train: error: {msg}'], r.stderr
    assert not (configs/'models').exists() and not (configs/'logs').exists()
    assert time.time() - t < 60


def test_in_process_call_and_exit_status(capsys):
    with pytest.raises(SystemExit) as e: mmsent_train(['--save_every', '0'])
    assert e.value.code == 2 and capsys.readouterr().err == 'mmsent_train: error: argument --save_every: must be >= 1, got 0\n'


def test_report_to_tensorboard_names_the_extra(monkeypatch):
    import importlib.util
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a, **k: None if name == 'tensorboard' else find(name, *a, **k))
    with pytest.raises(ConfigError, match=r'tensorboard is not installed: pip install mmsent\[tensorboard\]'): TrainConfig(report_to='tensorboard')


def test_config_file_yaml_and_json(tmp_path):
    (tmp_path/'c.yaml').write_text('learning_rate: 1e-3\nfusion: gated\nfreeze: true\nunfreeze_epoch: 2\nepochs: 4\n')
    cfg, extra = train_parser().parse_config(['--config', str(tmp_path/'c.yaml'), '--epochs', '2', '--no_progress'])
    assert (cfg.learning_rate, cfg.fusion, cfg.freeze, cfg.unfreeze_epoch, cfg.epochs, cfg.progress) == (1e-3, 'gated', True, 2, 2, False)
    assert given_fields(cfg) == {'learning_rate', 'fusion', 'freeze', 'unfreeze_epoch', 'epochs', 'progress'}
    # mmsent_tune's best_params.json: TrainConfig fields, JSON
    best = dict(dataset='synth', preset='tiny', epochs=5, batch_size=16, precision='fp32', learning_rate=0.002, warmup_steps=10, fusion='concat',
                dropout=0.2, freeze=False, unfreeze_epoch=None)
    (tmp_path/'best_params.json').write_text(json.dumps(best))
    cfg, _ = train_parser().parse_config(['--config', str(tmp_path/'best_params.json')])
    assert {k: getattr(cfg, k) for k in best} == best


def test_python_api_gets_the_same_checks():
    with pytest.raises(ConfigError) as e: TrainConfig(save_every=0)
    assert (e.value.name, str(e.value)) == ('save_every', 'save_every must be >= 1, got 0')
    with pytest.raises(ValueError, match="epochs must be an int or null, got 'three'"): TrainConfig(epochs='three')
    with pytest.raises(ValueError, match=r'n_heads 3 must divide the fusion width d_model \(64'): TrainConfig(n_heads=3)


def test_resume_semantics():
    saved = asdict(TrainConfig(epochs=3, batch_size=32, seed=7))
    r = resume_config(TrainConfig(resume='ck', epochs=5, output_dir='elsewhere', report_to='none'), saved)
    assert (r.epochs, r.output_dir, r.batch_size, r.seed, r.learning_rate, r.resume) == (5, 'elsewhere', 32, 7, 3e-3, 'ck')
    assert resume_config(TrainConfig(resume='ck'), saved).epochs == 3          # defaults are not requests
    assert resume_config(TrainConfig(resume='ck', seed=7), saved).seed == 7    # given, equal to the saved value
    with pytest.raises(ConfigError) as e: resume_config(TrainConfig(resume='ck', seed=1, learning_rate=0.01, freeze=True), saved)
    assert e.value.name == 'resume' and e.value.msg.endswith("--freeze given True, saved False; --learning_rate given 0.01, saved 0.003; --seed given 1, saved 7")
    cli, _ = train_parser().parse_config(['--resume', 'ck', '--epochs', '6', '--no_progress'])   # CLI defaults are not given either
    r = resume_config(cli, saved)
    assert (r.epochs, r.progress, r.batch_size) == (6, False, 32)
    assert resume_config(TrainConfig(resume='latest'), saved, folder='out/ck_2').resume == 'out/ck_2'
    from dataclasses import replace   # train() may swap 'latest' for the folder with replace: the record survives
    r = resume_config(replace(TrainConfig(resume='latest', epochs=5), resume='out/ck_2'), saved)
    assert (r.epochs, r.batch_size, r.resume) == (5, 32, 'out/ck_2')


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    from mmsent.synth import synthesize
    d = tmp_path_factory.mktemp('synth')
    synthesize(d, n=120, seed=3)
    return d


def test_resume_with_more_epochs_continues_and_refuses_changes(synth, tmp_path):
    fast = ['--data_root', synth, '--no_progress', '--max_audio_seconds', '1', '--batch_size', '16', '--save_every', '1', '--precision', 'fp32']
    r = run('mmsent_train', [*fast, '--epochs', '1', '--output_dir', 'o', '--log_dir', 'o'], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = tmp_path/'o'/'end_to_end_multimodal_epoch_1'
    bad = run('mmsent_train', ['--resume', ck, '--batch_size', '8', '--seed', '1'], tmp_path)
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        'mmsent_train: error: argument --resume: cannot change these options of the saved run (start a new run in another --output_dir instead): '
        '--batch_size given 8, saved 16; --seed given 1, saved 42'], bad.stderr
    r = run('mmsent_train', ['--resume', ck, '--epochs', '2', '--no_progress'], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    h = json.loads((tmp_path/'o'/'training_history_end_to_end.json').read_text())
    assert [e['epoch'] for e in h['epochs']] == [1, 2] and h['config']['epochs'] == 2


def test_auto_precision(monkeypatch):
    monkeypatch.delenv('ACCELERATE_MIXED_PRECISION', raising=False)
    assert core.resolve_precision('auto', 'cpu') == 'no'                      # fp32 on every CPU (measured: slower and worse in bf16)
    assert TrainConfig(device='cpu').mixed_precision() == 'no'
    monkeypatch.setenv('ACCELERATE_MIXED_PRECISION', 'bf16')                  # accelerate launch --mixed_precision bf16
    assert TrainConfig(device='cpu').mixed_precision() == 'bf16'
    assert TrainConfig(device='cpu', precision='fp32').mixed_precision() == 'no'   # an explicit precision wins


def test_explicit_bf16_on_avx2_cpu_warns_once(monkeypatch, caplog):
    monkeypatch.delenv('ACCELERATE_MIXED_PRECISION', raising=False)
    monkeypatch.setattr(core, 'cpu_bf16_support', lambda: dict(amx=False, avx512_bf16=False))
    monkeypatch.setattr(core.torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX2')
    core._warn_emulated_bf16.cache_clear()
    assert not core.native_bf16('cpu') and core.cpu_capability() == 'AVX2'
    with caplog.at_level(logging.WARNING, logger='mmsent.core'):
        assert core.resolve_precision('bf16', 'cpu') == 'bf16'
        assert core.resolve_precision('bf16', 'cpu') == 'bf16'
        assert core.resolve_precision('auto', 'cpu') == 'no'
    msgs = [r.getMessage() for r in caplog.records if r.name == 'mmsent.core']
    assert len(msgs) == 1 and 'without native bf16 (AVX2)' in msgs[0] and 'slower than in fp32' in msgs[0] and '\n' not in msgs[0], msgs
    core._warn_emulated_bf16.cache_clear()
