"mmsent_tune as a user runs it: a study killed mid-trial resumes from its SQLite file, and mmsent_train --config trains the best trial."
import json, os, signal, sqlite3, subprocess, sys, time
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent


def env(): return dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')


def n_complete(db):
    if not db.exists(): return 0
    try:
        with sqlite3.connect(db) as c: return c.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError: return 0   # tables not created yet


@pytest.mark.slow
def test_killed_study_resumes(tmp_path):
    from mmsent.synth import synthesize
    synthesize(tmp_path/'data', n=120, seed=3)
    args = ['--data_root', str(tmp_path/'data'), '--epochs', '2', '--batch_size', '16', '--max_audio_seconds', '2', '--max_train_steps', '6',
            '--fusions', 'concat,gated', '--out', 'tune', '--study_name', 'demo']
    db = tmp_path/'tune'/'study.db'
    p = subprocess.Popen([str(BIN/'mmsent_tune'), '--n_trials', '50', *args], cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while n_complete(db) < 2:
        assert p.poll() is None and time.time() < deadline, 'the study ended before two trials completed'
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL); p.wait()   # interrupted, probably mid-trial
    import optuna
    before = optuna.load_study(study_name='demo', storage=f'sqlite:///{db}')
    done_before = [t for t in before.trials if t.state.name == 'COMPLETE']
    assert len(done_before) >= 2 and not (tmp_path/'tune'/'best_params.json').exists()
    r = subprocess.run([str(BIN/'mmsent_tune'), '--n_trials', '1', *args], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    after = optuna.load_study(study_name='demo', storage=f'sqlite:///{db}')
    done_after = [t for t in after.trials if t.state.name in ('COMPLETE', 'PRUNED')]
    assert len(done_after) == len(done_before) + 1 + sum(t.state.name == 'PRUNED' for t in before.trials)   # one more, the old ones kept
    assert after.best_value >= max(t.value for t in done_before)
    assert {t.number for t in done_before} <= {t.number for t in after.trials}
    assert 'train it: mmsent_train --config' in r.stdout
    best = json.loads((tmp_path/'tune'/'best_params.json').read_text())
    assert set(best) >= {'learning_rate', 'warmup_steps', 'fusion', 'dropout', 'freeze', 'unfreeze_epoch'}
    assert best['fusion'] in ('concat', 'gated')
    t = subprocess.run([str(BIN/'mmsent_train'), '--config', 'tune/best_params.json', '--epochs', '1', '--output_dir', 'final', '--log_dir', 'final',
                        '--no_progress'], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert t.returncode == 0, t.stderr
    cfg = json.loads((tmp_path/'final'/'training_history_end_to_end.json').read_text())['config']
    assert cfg['epochs'] == 1                               # the command line wins
    for k in ('learning_rate', 'fusion', 'dropout', 'freeze', 'unfreeze_epoch', 'data_root'):
        assert cfg[k] == best[k], k                         # the file fills in the rest


def test_bad_config_file(tmp_path):
    (tmp_path/'best.json').write_text(json.dumps({'learning_rat': 0.1}))
    r = subprocess.run([str(BIN/'mmsent_train'), '--config', 'best.json'], cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert r.returncode == 2 and "best.json: unknown options ['learning_rat']" in r.stderr, r.stderr
