"The runtime requirements in settings.ini are what mmsent/ imports: nothing missing, nothing extra, no upper caps; plotting and the optional features imported lazily (pandas is not checked: scikit-learn imports it when it is installed)."
import ast, configparser, re, subprocess, sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# modules mmsent/ imports only inside an optional feature, and the extra that provides each
OPTIONAL = {'streamlit': 'app', 'optuna': 'tune', 'pandas': 'app', 'onnxruntime': 'onnx', 'onnx': 'onnx', 'onnxscript': 'onnx',
            'litserve': 'serve', 'fastapi': 'serve', 'starlette': 'serve', 'prometheus_client': 'serve', 'peft': 'lora', 'datasets': 'hf'}
# notebook tools: the dev extra only
DEV_ONLY = {'nbdev', 'execnb', 'ghapi', 'jupyterlab', 'ipywidgets', 'nbconvert', 'pytest', 'pytest-xdist', 'playwright'}


def settings():
    cp = configparser.ConfigParser(delimiters=['='])
    cp.read(ROOT/'settings.ini')
    return cp['DEFAULT']


def dist_name(req:str)->str: return re.split(r'[<>=!~\[ ;]', req, maxsplit=1)[0].lower().replace('_', '-')


def imported_top_modules()->set:
    mods = set()
    for f in (ROOT/'mmsent').rglob('*.py'):
        for node in ast.walk(ast.parse(f.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Import): mods |= {a.name.split('.')[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module: mods.add(node.module.split('.')[0])
    return {m for m in mods if m not in sys.stdlib_module_names and m not in ('mmsent', '__future__')}


def test_requirements_are_what_the_library_imports():
    cfg = settings()
    runtime = {dist_name(r): r for r in cfg['requirements'].split()}
    extras = {k: {dist_name(r) for r in cfg.get(f'{k}_requirements', '').split()} for k in ('app', 'tune', 'tensorboard', 'onnx', 'serve', 'lora', 'modern', 'hf', 'dev')}
    dists = {k: {d.lower().replace('_', '-') for d in v} for k, v in packages_distributions().items()}
    needed = {}
    for m in imported_top_modules():
        assert m in dists, f"mmsent/ imports {m}, which no installed distribution provides"
        needed[m] = dists[m]
    for m, ds in needed.items():
        if m in OPTIONAL: assert ds & extras[OPTIONAL[m]], f"{m} (imported by the optional feature) is not in the {OPTIONAL[m]} extra"
        else: assert ds & set(runtime), f"mmsent/ imports {m} ({sorted(ds)}) but settings.ini's requirements do not list it"
    used = set().union(*(ds for m, ds in needed.items() if m not in OPTIONAL))
    unused = set(runtime) - used
    assert not unused, f"runtime requirements that mmsent/ never imports: {sorted(unused)}"
    capped = [r for r in runtime.values() if '<' in r]
    assert not capped, f"upper caps on runtime requirements: {capped}"
    assert not DEV_ONLY & set(runtime), f"notebook or test tools in the runtime requirements: {sorted(DEV_ONLY & set(runtime))}"
    assert {'nbdev', 'execnb', 'ghapi', 'jupyterlab', 'ipywidgets'} <= extras['dev']


def test_plotting_and_app_imports_stay_lazy():
    code = ("import sys, mmsent.evaluation, mmsent.train, mmsent.predict, mmsent.export; "
            "print(sorted(m for m in ('matplotlib', 'seaborn', 'streamlit', 'optuna', 'tensorboard', 'onnxruntime', 'onnx', 'litserve', 'prometheus_client', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert out == '[]', f"importing mmsent's modules imported {out}"
