"""Which environment settings change the CPU kernels enough to expose last-bit assumptions on the machine at hand.

For each setting, fresh processes compare:
- `reload`: the tiny model (several seeds) against the same weights copied to memory 8 bytes past a 64-byte boundary,
  where safetensors' `load_file` can leave them: how many seeds give outputs that are not bit-equal. This is
  "a reloaded model differs from the saved one" when the load path does not copy its tensors into PyTorch's memory
  (`mmsent.core.aligned_copy`).
- `resume`: a 2-epoch training run on 160 synthetic samples against the same run resumed from its step-4 checkpoint,
  once through mmsent's load path and once with the restored tensors left misaligned (`misaligned_copy` in place of
  `aligned_copy`): how many of the final weight tensors are not bit-equal, and the largest difference.
- `vs native`: the largest difference of the reload outputs from the same seed's with no setting: how far the setting
  moves the kernels.

    python bench/bench_numerics.py            # 5 seeds per setting (about 10 minutes on 2 cores)
"""
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import table, write

SETTINGS = {
    'native': {},
    'ATEN_CPU_CAPABILITY=avx2': dict(ATEN_CPU_CAPABILITY='avx2'),
    'ATEN_CPU_CAPABILITY=default': dict(ATEN_CPU_CAPABILITY='default'),
    'MKL_ENABLE_INSTRUCTIONS=AVX2': dict(MKL_ENABLE_INSTRUCTIONS='AVX2'),
    'ONEDNN_MAX_CPU_ISA=AVX2': dict(ONEDNN_MAX_CPU_ISA='AVX2'),
    'MKL_CBWR=COMPATIBLE': dict(MKL_CBWR='COMPATIBLE'),
    'forced (mmsent.core.forced_kernels())': None,   # filled in from the package: the setting CI's second pass uses
}
KERNEL_VARS = ('ATEN_CPU_CAPABILITY', 'MKL_ENABLE_INSTRUCTIONS', 'ONEDNN_MAX_CPU_ISA', 'MKL_CBWR')

RESUME = r'''
import json, shutil, sys
from pathlib import Path
from safetensors.torch import load_file
import mmsent.core, mmsent.model, mmsent.train
from mmsent.synth import synthesize
from mmsent.train import TrainConfig, train
work = Path(sys.argv[1])
synthesize(work/'synth', n=160, seed=3)
steps = dict(data_root=str(work/'synth'), epochs=2, batch_size=8, learning_rate=1e-3, max_audio_seconds=2.0, progress=False, save_steps=4)
train(TrainConfig(**steps, output_dir=str(work/'ref'), log_dir=str(work/'ref'/'logs')))
ref = load_file(str(work/'ref'/'end_to_end_multimodal_epoch_2'/'model.safetensors'))
out = {}
for kind in ('aligned', 'misaligned'):
    if kind == 'misaligned': mmsent.model.aligned_copy = mmsent.train.aligned_copy = mmsent.core.misaligned_copy
    d = work/kind; d.mkdir()
    shutil.copytree(work/'ref'/'end_to_end_multimodal_step_4', d/'end_to_end_multimodal_step_4')
    train(TrainConfig(resume='latest', output_dir=str(d), progress=False))
    w = load_file(str(d/'end_to_end_multimodal_epoch_2'/'model.safetensors'))
    diff = {k: (w[k] - ref[k]).abs().max().item() for k in ref}
    out[kind] = dict(differ=sum(v > 0 for v in diff.values()), tensors=len(diff), max=max(diff.values()))
print(json.dumps(out))
'''

CHILD = r'''
import json, sys, torch, numpy as np
from PIL import Image
from mmsent.core import misaligned_copy, cpu_capability
from mmsent.model import EndToEndMultiModalModel
from mmsent.encoders import MultiModalProcessor
torch.set_num_threads(1)
proc = MultiModalProcessor.from_pretrained('tiny')
rng = np.random.default_rng(0)
texts = ['a fine day', 'this is awful and I hate it', 'well', 'so so']
audio = [rng.normal(0, 0.1, 16000*s).astype(np.float32) for s in (1, 2, 1, 3)]
images = [Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)) for _ in range(4)]
batch = dict(proc(text=texts, audio=audio, image=images))
rows = []
for seed in range(int(sys.argv[1])):
    torch.manual_seed(seed)
    model = EndToEndMultiModalModel.from_preset('tiny').eval()
    with torch.no_grad():
        a = model(**batch)
        model.load_state_dict(misaligned_copy(model.state_dict()), assign=True)
        b = model(**batch)
    rows.append(dict(seed=seed, logits=a.tolist(), misaligned_diff=(a - b).abs().max().item()))
print(json.dumps(dict(capability=cpu_capability(), rows=rows)))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, default=5)
    a = ap.parse_args()
    from mmsent.core import forced_kernels
    SETTINGS['forced (mmsent.core.forced_kernels())'] = forced_kernels()
    out, native = [], None
    for name, env in SETTINGS.items():
        base = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS}
        env = dict(base, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', **env)
        r = subprocess.run([sys.executable, '-c', CHILD, str(a.seeds)], capture_output=True, text=True, env=env)
        if r.returncode: raise RuntimeError(f'{name}: {r.stderr[-2000:]}')
        res = json.loads(r.stdout.strip().splitlines()[-1])
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([sys.executable, '-c', RESUME, tmp], capture_output=True, text=True, env=dict(env, MMSENT_CACHE=str(Path(tmp)/'cache')))
        if r.returncode: raise RuntimeError(f'{name}: {r.stderr[-2000:]}')
        resume = json.loads(r.stdout.strip().splitlines()[-1])
        if native is None: native = res
        vs = max((torch.tensor(x['logits']) - torch.tensor(n['logits'])).abs().max().item() for x, n in zip(res['rows'], native['rows']))
        row = dict(setting=name, capability=res['capability'], misaligned_seeds=sum(x['misaligned_diff'] > 0 for x in res['rows']),
                   misaligned_max=max(x['misaligned_diff'] for x in res['rows']), vs_native=vs,
                   resume_differ=resume['aligned']['differ'], resume_max=resume['aligned']['max'],
                   resume_misaligned_differ=resume['misaligned']['differ'], resume_misaligned_max=resume['misaligned']['max'],
                   resume_tensors=resume['aligned']['tensors'])
        out.append(row)
        print(f"{name}: {row}", flush=True)
    print(table(out, [('setting', 'setting', 's'), ('capability', 'ATen capability', 's'), ('misaligned_seeds', f'reload differs (of {a.seeds})', 'd'),
                      ('misaligned_max', 'largest', '.1e'), ('vs_native', 'vs native', '.1e'), ('resume_differ', 'resume: tensors differ', 'd'),
                      ('resume_misaligned_differ', 'misaligned resume: differ', 'd'), ('resume_misaligned_max', 'largest', '.1e')]))
    write('numerics', dict(seeds=a.seeds, rows=out))


if __name__ == '__main__':
    main()
