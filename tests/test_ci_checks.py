"`tools/dev.sh check` (run by CI) fails on a hand-edited library file and on an unclean notebook, and passes on a clean clone; no saved notebook output shows a path of the machine that ran it."
import json, os, re, subprocess, sys
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


def test_hand_edited_library_and_unclean_notebook_fail(clone):
    "Both faults in one clone (one check run): each is reported, and the check fails."
    f = clone/'mmsent'/'core.py'
    f.write_text(f.read_text().replace("LABELS = ('negative', 'neutral', 'positive')", "LABELS = ('neg', 'neu', 'pos')"))
    f = clone/'nbs'/'00_core.ipynb'
    nb = json.loads(f.read_text())
    nb['cells'][0]['execution_count'] = 42
    nb['metadata']['widgets'] = {'junk': 1}
    f.write_text(json.dumps(nb))
    subprocess.run(['git', 'commit', '-qam', 'edit the library by hand, save a notebook unclean'], cwd=clone, check=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@t', GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@t'))
    r = check(clone)
    assert r.returncode != 0
    assert 'notebooks are not clean' in r.stderr and 'nbs/00_core.ipynb' in r.stdout
    assert 'out of sync with the notebooks' in r.stderr and 'mmsent/core.py' in r.stdout


# --- saved outputs are published (README, docs): they must not show where the notebook ran ---
MACHINE_DIRS = re.compile(r'(?<![\w.~-])(/tmp/|/work/|/root/|/home/|/Users/|/private/var/folders/|/var/folders/)')

def machine_paths(nb:Path, root:Path)->list:
    "(cell index, excerpt) for each saved output of notebook `nb` that names a temporary or home folder, or the repository's absolute path."
    hits = []
    for i, cell in enumerate(json.loads(nb.read_text()).get('cells', [])):
        for out in cell.get('outputs', []):
            text = json.dumps(out, ensure_ascii=False).replace('\\/', '/')
            for m in [*MACHINE_DIRS.finditer(text), *re.finditer(re.escape(str(root)), text)]:
                hits.append((i, text[max(0, m.start()-40):m.end()+40]))
    return hits


def test_no_machine_paths_in_saved_outputs(root):
    bad = {nb.name: hits for nb in sorted((root/'nbs').glob('**/*.ipynb')) if (hits := machine_paths(nb, root))}
    assert not bad, "saved outputs name the build machine's folders (print paths relative to a folder, or re-run the notebook so they do):\n" + \
        '\n'.join(f"{n} cell {i}: {x!r}" for n, hits in bad.items() for i, x in hits)


@pytest.mark.parametrize('shown', ['/tmp/tmpab12cd/models/best', '/home/alice/mmsent/runs', 'C:/x and /root/.cache/mmsent', 'REPO/nbs/data'])
def test_machine_paths_are_found(tmp_path, root, shown):
    shown = shown.replace('REPO', str(root))
    nb = tmp_path/'x.ipynb'
    nb.write_text(json.dumps({'cells': [{'cell_type': 'markdown', 'source': ['/tmp/ in prose is fine']},
                                        {'cell_type': 'code', 'source': ['print(p)'], 'outputs': [
                                            {'output_type': 'stream', 'name': 'stdout', 'text': [f'saved to {shown}\n']}]}]}))
    assert {i for i, _ in machine_paths(nb, root)} == {1}   # the output cell, not the markdown


def test_relative_and_web_paths_pass(tmp_path, root):
    nb = tmp_path/'x.ipynb'
    nb.write_text(json.dumps({'cells': [{'cell_type': 'code', 'source': [], 'outputs': [{'output_type': 'execute_result', 'data': {
        'text/plain': ['models/end_to_end_multimodal_best', '~/.cache/huggingface', 'https://github.com/mmsent/mmsent/blob/main/mmsent/core.py']}}]}]}))
    assert machine_paths(nb, root) == []
