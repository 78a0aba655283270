"""What `import mmsent` costs against `import torch`, each in a fresh Python process, in the same run.

    python bench/bench_import.py                  # this checkout
    python bench/bench_import.py --ref ab82274    # also an earlier commit's package, in the same run (before / after)

Each statement runs in a new interpreter, `--repeats` times, the statements interleaved so that a load change on the
machine hits them alike; the figure is the median wall time less that of an empty interpreter (`python -c pass`).
`import mmsent.model` (the modelling code: transformers and the encoders) is measured too: a fresh process that loads
a saved model pays it once. Prints a table and writes bench/results/import.json; asserts nothing.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATEMENTS = {'empty interpreter': 'pass', 'import torch': 'import torch', 'import mmsent': 'import mmsent',
              'import mmsent.model': 'import mmsent.model'}


def seconds(code:str, package_dir:Path)->float:
    "Wall time of one fresh interpreter running `code` with mmsent from `package_dir`."
    env = dict(os.environ, PYTHONPATH=str(package_dir), HF_HUB_OFFLINE='1')
    t0 = time.perf_counter()
    subprocess.run([sys.executable, '-c', code], env=env, check=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - t0


def measure(package_dir:Path, repeats:int)->dict:
    "Median seconds of each statement above the empty interpreter's."
    times = {k: [] for k in STATEMENTS}
    for _ in range(repeats):
        for k, code in STATEMENTS.items(): times[k].append(seconds(code, package_dir))
    base = statistics.median(times['empty interpreter'])
    out = {k: statistics.median(v) - base for k, v in times.items() if k != 'empty interpreter'}
    return dict(seconds=out, mmsent_over_torch=out['import mmsent']/out['import torch'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--ref', default=None, help='an earlier commit to measure in the same run (before / after)')
    ap.add_argument('--repeats', type=int, default=5, help='fresh interpreters per statement')
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common as C   # the measurements run in fresh interpreters: this process's imports do not count
    runs = {}
    if a.ref:
        with tempfile.TemporaryDirectory() as tmp:   # the earlier commit's package, extracted beside this one
            runs[a.ref] = measure(C.extract_package(a.ref, tmp), a.repeats)
    runs[C.head_name()] = measure(ROOT, a.repeats)
    m = C.machine()
    print(f"machine: {m['cpu_model']} ({m['cpu_capability']}), {m['cores']} cores, torch {m['torch']}; median of {a.repeats} fresh interpreters")
    print(f"{'code':<24} {'import torch':>12} {'import mmsent':>13} {'ratio':>6} {'import mmsent.model':>19}")
    for name, r in runs.items():
        s = r['seconds']
        print(f"{name:<24} {s['import torch']:>11.2f}s {s['import mmsent']:>12.2f}s {r['mmsent_over_torch']:>5.2f}x {s['import mmsent.model']:>18.2f}s")
    C.write('import', dict(repeats=a.repeats, runs=runs))


if __name__ == '__main__':
    main()
