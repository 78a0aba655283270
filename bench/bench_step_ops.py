"""Operators a training step dispatches, and the data-dependent ones among them (those that make the host wait for
the device on a GPU: reading a value, `nonzero`, boolean indexing, `unique`), in the forward and in the whole step.

    python bench/bench_step_ops.py                          # tiny and base presets, this checkout
    python bench/bench_step_ops.py --ref 3f88791            # also an earlier commit, in the same run (before / after)

The step is the default training setting: modality dropout 0.1, the single-modality fusion loss (weight 2) and the
auxiliary heads (weight 1), AdamW as `mmsent.train` builds it, and a batch of 8 samples whose clips last 2 to 9 s
(44 s of audio in all), one sample without audio and one without an image. The base preset is built from its
configs (random weights; the operators do not depend on them) and has Wav2Vec2-base's group-norm layout.
Every operator is counted under a `TorchDispatchMode` on the CPU, once the model and the optimizer are warm, and again with
`torch.profiler` (top-level ATen operators), also for the step `mmsent_train --compile` runs (this checkout only); then
`torch._dynamo.explain` traces the training forward and counts its graphs and graph breaks. Prints a table and writes bench/results/step_ops.json; asserts nothing.
"""
import argparse, json, os, subprocess, sys, tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# operators whose result the host must read, or whose output shape depends on the data
DATA_DEPENDENT = {'aten::_local_scalar_dense', 'aten::item', 'aten::is_nonzero', 'aten::equal', 'aten::nonzero', 'aten::nonzero_static',
                  'aten::masked_select', 'aten::unique', 'aten::_unique', 'aten::_unique2', 'aten::unique_dim', 'aten::unique_consecutive',
                  'aten::repeat_interleave'}

CHILD = r'''
import json, sys
import numpy as np, torch
from collections import Counter
from torch.utils._python_dispatch import TorchDispatchMode
sys.path.insert(0, BENCH)
import common as C
from mmsent.train import make_optimizer

DATA_DEPENDENT = set(DD)

class Count(TorchDispatchMode):
    "Every operator dispatched, and the data-dependent ones (boolean indexing counts as one)."
    def __init__(self): super().__init__(); self.ops, self.dd = Counter(), Counter()
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.name().split('.')[0]
        self.ops[name] += 1
        boolean_index = name in ('aten::index', 'aten::index_put', 'aten::index_put_') and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ()))
        if name in DATA_DEPENDENT or boolean_index: self.dd[name + (' (boolean index)' if boolean_index else '')] += 1
        return func(*args, **(kwargs or {}))

def top_level(fn):
    "The ATen operators `fn` runs that no other ATen operator called, counted with `torch.profiler`; and the data-dependent ones."
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof: fn()
    ops, dd = Counter(), Counter()
    for e in prof.events():
        if not e.name.startswith('aten::'): continue
        p = e.cpu_parent
        while p is not None and not p.name.startswith('aten::'): p = p.cpu_parent
        if p is None:
            ops[e.name] += 1
            if e.name in DATA_DEPENDENT: dd[e.name] += 1
    return ops, dd

out = {}
for preset in PRESETS:
    torch.manual_seed(0)
    model, proc = C.build(preset)
    model.config.modality_dropout, model.config.unimodal_fusion_weight, model.config.aux_loss_weight = 0.1, 2.0, 1.0
    model.train()
    opt = make_optimizer(model, learning_rate=1e-4, pretrained_lr_ratio=0.1, weight_decay=0.01, device='cpu')
    rng = np.random.default_rng(0)
    from PIL import Image
    seconds = (2, 3, 4, 5, 6, 7, 8, 9)
    audio = [rng.normal(0, 0.1, 16_000*s).astype(np.float32) for s in seconds]; audio[3] = None
    image = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in seconds]; image[5] = None
    inputs = dict(proc(text=['a word or two'] * 8, audio=audio, image=image))
    if preset == 'base': inputs['visual_inputs'] = torch.randn(8, 3, 224, 224)
    labels = torch.arange(8) % 3
    def step(counter=None, call=model):
        out = call(**inputs, labels=labels, return_dict=True)
        if counter is not None: fwd = (sum(counter.ops.values()), sum(counter.dd.values()), dict(counter.dd))
        out.loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return fwd if counter is not None else None
    step(); step()   # warm: lazy initialisation, optimizer state
    with Count() as c: fwd = step(c)
    profiled = top_level(step)
    explained = torch._dynamo.explain(model)(**inputs, labels=labels, return_dict=True)   # Dynamo's trace of the training forward
    torch._dynamo.reset()
    compiled = None
    if COMPILED:   # the step `mmsent_train --compile` runs: the model compiled with static shapes, as `train` compiles it
        compiled_model = torch.compile(model, dynamic=False)
        step(call=compiled_model); step(call=compiled_model)   # compile the forward and the backward, then warm
        compiled = top_level(lambda: step(call=compiled_model))
        torch._dynamo.reset()
    out[preset] = dict(profiled_ops=sum(profiled[0].values()),
                       compiled_ops=compiled and sum(compiled[0].values()), compiled_data_dependent=compiled and sum(compiled[1].values()),
                       compiled_top=compiled and dict(compiled[0].most_common(8)), forward_ops=fwd[0], forward_data_dependent=fwd[1], forward_data_dependent_ops=fwd[2],
                       step_ops=sum(c.ops.values()), step_data_dependent=sum(c.dd.values()), step_data_dependent_ops=dict(c.dd),
                       graphs=explained.graph_count, graph_breaks=explained.graph_break_count,
                       graph_break_reasons=sorted({str(b.reason).split(chr(10))[0][:160] for b in explained.break_reasons}))
print(json.dumps(out))
'''


def child_threads()->int:
    "The threads each measuring process runs with: OMP_NUM_THREADS, else 1 (the counts do not depend on it)."
    return int(os.environ.get('OMP_NUM_THREADS', '1'))


def measure(tree:Path, presets, compiled:bool=False)->dict:
    "The counts for the mmsent package in `tree` (a checkout), in a fresh process; with `compiled`, also the compiled step's."
    code = (CHILD.replace('BENCH', repr(str(Path(__file__).resolve().parent))).replace('DD', repr(sorted(DATA_DEPENDENT)))
            .replace('PRESETS', repr(presets)).replace('COMPILED', repr(compiled)))
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=str(tree), OMP_NUM_THREADS=str(child_threads()))
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=tree)
    if r.returncode: raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--presets', nargs='+', default=['tiny', 'base'])
    ap.add_argument('--ref', default=None, help='an earlier commit to measure in the same run (before / after)')
    ap.add_argument('--no_compile', action='store_true', help='skip the compiled step (compiling the base preset takes minutes on a few cores)')
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common as C
    runs = {}
    if a.ref:
        with tempfile.TemporaryDirectory() as tmp:   # the earlier commit's package, extracted beside this one
            runs[a.ref] = measure(C.extract_package(a.ref, tmp), a.presets)
    runs[C.head_name()] = measure(ROOT, a.presets, compiled=not a.no_compile)
    m = C.machine()
    print(f"machine: {m['cpu_model']} ({m['cpu_capability']}), torch {m['torch']}")
    print(f"{'code':<24} {'preset':<6} {'forward ops':>11} {'data-dep.':>9} {'step ops':>9} {'data-dep.':>9} {'breaks':>6} {'profiled':>8} {'compiled':>8}  data-dependent operators in the step")
    for name, r in runs.items():
        for p, x in r.items():
            print(f"{name:<24} {p:<6} {x['forward_ops']:>11} {x['forward_data_dependent']:>9} {x['step_ops']:>9} {x['step_data_dependent']:>9} "
                  f"{x['graph_breaks']:>6} {x['profiled_ops']:>8} {str(x['compiled_ops'] or '-'):>8}  {x['step_data_dependent_ops']}")
    C.write('step_ops', dict(runs=runs), threads=child_threads())


if __name__ == '__main__':
    main()
