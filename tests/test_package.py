"`pip wheel .` gives a wheel that installs into a fresh venv with its package data and console scripts."
import configparser, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import pytest


def settings(root):
    cp = configparser.ConfigParser(delimiters=['='])
    cp.read(root/'settings.ini')
    return cp['DEFAULT']


@pytest.fixture(scope='module')
def wheel(root, tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(out), str(root)],
                   check=True, capture_output=True, text=True)
    whls = list(out.glob('mmsent-*.whl'))
    assert len(whls) == 1, whls
    return whls[0]


def test_wheel_contents(wheel, root):
    cfg = settings(root)
    assert wheel.name.startswith(f"mmsent-{cfg['version']}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    lib = {str(p.relative_to(root)) for p in (root/'mmsent').rglob('*') if p.is_file() and '__pycache__' not in p.parts}
    missing = lib - names
    assert not missing, f'files of mmsent/ missing from the wheel: {sorted(missing)}'
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('.dist-info/entry_points.txt'))).decode()
    for script in cfg['console_scripts'].split():
        assert script.split('=')[0] in meta, f'console script {script} not declared in the wheel'


def test_wheel_installs_in_fresh_venv(wheel, root, tmp_path):
    "A fresh venv that borrows only the dependencies (not mmsent) from the dev venv, then installs the wheel."
    venv = tmp_path/'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    py = venv/'bin'/'python'
    site = Path(subprocess.check_output([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], text=True).strip())
    # dependencies: the dev venv's site-packages as a plain path entry (its .pth files, including mmsent's editable hook, stay inactive)
    (site/'_deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    subprocess.run([sys.executable, '-m', 'pip', '--python', str(py), 'install', '--no-deps', '--no-index', '-q', str(wheel)],
                   check=True, capture_output=True, text=True)
    code = 'import mmsent, mmsent.core as c; print(mmsent.__file__); print(mmsent.__version__); print(c.LABELS)'
    out = subprocess.run([str(py), '-c', code], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith(str(site)), f'mmsent imported from {out[0]}, not from the installed wheel'
    assert out[1] == settings(root)['version']
    assert out[2] == "('negative', 'neutral', 'positive')"
    for script in settings(root)['console_scripts'].split():
        name = script.split('=')[0]
        exe = venv/'bin'/name
        assert exe.exists(), f'console script {name} not installed'
        r = subprocess.run([str(exe), '--help'], capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
