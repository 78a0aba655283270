"`tools/dev.sh check` (run by CI) fails on a hand-edited library file and on an unclean notebook, and passes on a clean clone."
import os, subprocess, sys
from pathlib import Path
import pytest


@pytest.fixture
def clone(root, tmp_path):
    "A clone of the committed repository, checked with the dev venv this test runs in."
    d = tmp_path/'clone'
    subprocess.run(['git', 'clone', '-q', str(root), str(d)], check=True)
    return d


def check(clone):
    # the dev venv as it is (no re-install pointing it at the clone), with the clone's own package first on the path
    env = dict(os.environ, MMSENT_VENV=str(Path(sys.executable).parent.parent), MMSENT_SKIP_INSTALL='1', PYTHONPATH=str(clone))
    return subprocess.run(['bash', 'tools/dev.sh', 'check'], cwd=clone, capture_output=True, text=True, env=env)


def test_clean_clone_passes(clone):
    r = check(clone)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hand_edited_library_fails(clone):
    f = clone/'mmsent'/'core.py'
    f.write_text(f.read_text().replace("LABELS = ('negative', 'neutral', 'positive')", "LABELS = ('neg', 'neu', 'pos')"))
    subprocess.run(['git', 'commit', '-qam', 'edit the library by hand'], cwd=clone, check=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@t', GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@t'))
    r = check(clone)
    assert r.returncode != 0
    assert 'out of sync with the notebooks' in r.stderr
    assert 'mmsent/core.py' in r.stdout


def test_unclean_notebook_fails(clone):
    import json
    f = clone/'nbs'/'00_core.ipynb'
    nb = json.loads(f.read_text())
    nb['cells'][0]['execution_count'] = 42
    nb['metadata']['widgets'] = {'junk': 1}
    f.write_text(json.dumps(nb))
    r = check(clone)
    assert r.returncode != 0
    assert 'notebooks are not clean' in r.stderr
