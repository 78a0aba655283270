"""Training-step benchmark: throughput and model-FLOPs utilisation against this machine's measured matmul peak.

    python bench/bench_train_step.py                  # tiny and base presets, fp32 and bf16, on the CPU
    python bench/bench_train_step.py --presets base --steps 3 --json bench/results/train_step.json

For each preset and precision it times full training steps (forward, combined loss, backward, AdamW) on a
synthetic batch built by the real processor, counts the model FLOPs of one step with
`torch.utils.flop_counter.FlopCounterMode`, and divides FLOPs by step time. The limit is the dense matmul peak
measured in the same run (fp32 and bf16, square matmuls). Base encoders are built from their configs (random
init): the FLOPs and the time do not depend on the weights. Prints a table and writes JSON; asserts nothing.
"""
import argparse, json, os, platform, resource, subprocess, sys, time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mmsent.encoders import MultiModalProcessor, base_config
from mmsent.model import EndToEndMultiModalModel, ModelConfig


def matmul_peak(dtype, n=2048, seconds=2.0):
    "Dense square-matmul throughput in GFLOP/s."
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2): a @ b
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds: a @ b; k += 1
    return 2*n**3*k/(time.perf_counter() - t0)/1e9


def build(preset, grad_ckpt=False):
    if preset == 'base':
        cfg = ModelConfig(preset='base', encoder_configs={m: base_config(m).to_dict() for m in ('text', 'audio', 'visual')},
                          gradient_checkpointing=grad_ckpt)
        return EndToEndMultiModalModel(cfg), MultiModalProcessor.from_pretrained('tiny')  # the tiny tokenizer's ids are valid for RoBERTa-base's vocabulary
    return EndToEndMultiModalModel.from_preset('tiny', gradient_checkpointing=grad_ckpt), MultiModalProcessor.from_pretrained('tiny')


def batch(proc, preset, B, seconds=2.0, tokens=32):
    rng = np.random.default_rng(0)
    text = [' '.join(['word'] * tokens)] * B
    audio = [rng.normal(0, 0.1, int(16_000*seconds)).astype(np.float32) for _ in range(B)]
    from PIL import Image
    side = 224 if preset == 'base' else 64
    image = [Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)) for _ in range(B)]
    inputs = dict(proc(text=text, audio=audio, image=image))
    if preset == 'base':   # the tiny processor resizes to 64 px; the base ViT takes 224 px
        inputs['visual_inputs'] = torch.randn(B, 3, 224, 224)
    return inputs, torch.arange(B) % 3


def step_fn(model, opt, inputs, labels, precision):
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=precision == 'bf16'):
        out = model(**inputs, labels=labels, return_dict=True)
    out.loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)


def bench_step(preset, precision, B, steps):
    torch.manual_seed(0)
    model, proc = build(preset)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    inputs, labels = batch(proc, preset, B)
    step_fn(model, opt, inputs, labels, precision)   # warm-up (allocations, AdamW state)
    with FlopCounterMode(display=False) as fc:
        step_fn(model, opt, inputs, labels, precision)
    flops = fc.get_total_flops()
    t = []
    for _ in range(steps):
        t0 = time.perf_counter(); step_fn(model, opt, inputs, labels, precision); t.append(time.perf_counter() - t0)
    s = float(np.median(t))
    return dict(preset=preset, precision=precision, batch=B, step_s=s, samples_per_s=B/s, gflop_per_step=flops/1e9, gflops=flops/s/1e9)


def _status_mib(key):
    "A memory figure of this process from /proc/self/status, in MiB (Linux)."
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(key + ':'): return int(line.split()[1])/1024
    raise KeyError(key)


def peak_rss_child(preset, grad_ckpt, precision, B):
    "Peak RSS (MiB) of training steps, in a fresh process: the high-water mark is reset after the model, optimizer state and batch exist."
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_train_step as b, torch; "
            f"torch.manual_seed(0); m, p = b.build({preset!r}, {grad_ckpt}); m.train(); o = torch.optim.AdamW(m.parameters(), lr=1e-5); "
            f"i, y = b.batch(p, {preset!r}, {B}); b.step_fn(m, o, i, y, {precision!r}); "   # AdamW state now exists
            f"open('/proc/self/clear_refs', 'w').write('5'); r0 = b._status_mib('VmRSS'); "   # reset the high-water mark
            f"[b.step_fn(m, o, i, y, {precision!r}) for _ in range(2)]; print(r0, b._status_mib('VmHWM'))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE='1'))
    if r.returncode: raise RuntimeError(r.stderr[-2000:])
    before, peak = map(float, r.stdout.split()[-2:])
    return dict(preset=preset, grad_checkpointing=grad_ckpt, precision=precision, batch=B, rss_before_steps_mib=before,
                peak_rss_mib=peak, step_memory_mib=peak - before)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--presets', nargs='+', default=['tiny', 'base'])
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--memory', action='store_true', help='also measure peak RSS of base steps with/without checkpointing and bf16')
    ap.add_argument('--json', default='bench/results/train_step.json')
    a = ap.parse_args()
    torch.manual_seed(0)
    peaks = {'fp32': matmul_peak(torch.float32), 'bf16': matmul_peak(torch.bfloat16)}
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"dense matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    rows = []
    for preset in a.presets:
        B = 2 if preset == 'base' else 16
        for prec in ('fp32', 'bf16'):
            r = bench_step(preset, prec, B, a.steps)
            r['frac_fp32_peak'], r['frac_bf16_peak'] = r['gflops']/peaks['fp32'], r['gflops']/peaks['bf16']
            rows.append(r)
    print(f"\n{'preset':6s} {'prec':5s} {'batch':>5s} {'step s':>8s} {'samples/s':>10s} {'GFLOP/step':>11s} {'GFLOP/s':>8s} {'/fp32 peak':>10s} {'/bf16 peak':>10s}")
    for r in rows:
        print(f"{r['preset']:6s} {r['precision']:5s} {r['batch']:5d} {r['step_s']:8.3f} {r['samples_per_s']:10.2f} {r['gflop_per_step']:11.1f} "
              f"{r['gflops']:8.1f} {r['frac_fp32_peak']:10.0%} {r['frac_bf16_peak']:10.0%}")
    mem = []
    if a.memory:
        for ck, prec in ((False, 'fp32'), (True, 'fp32'), (False, 'bf16')):
            mem.append(peak_rss_child('base', ck, prec, 2))
        print(f"\n{'base, batch 2':24s} {'peak RSS MiB':>12s} {'step memory MiB':>16s}")
        for m in mem: print(f"{('ckpt ' if m['grad_checkpointing'] else '') + m['precision']:24s} {m['peak_rss_mib']:12.0f} {m['step_memory_mib']:16.0f}")
        if len(mem) >= 2 and mem[0]['step_memory_mib'] > 0:
            print(f"gradient checkpointing: step memory {1 - mem[1]['step_memory_mib']/mem[0]['step_memory_mib']:.0%} lower")
    out = Path(a.json); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(matmul_peak_gflops=peaks, steps=rows, memory=mem, torch=torch.__version__,
                                   threads=torch.get_num_threads()), indent=2))
    print(f"\nwrote {out}")


if __name__ == '__main__':
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    main()
