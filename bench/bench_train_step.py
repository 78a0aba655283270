"""Training-step benchmark: throughput and model-FLOPs utilisation against this machine's measured matmul peak, and peak memory.

    python bench/bench_train_step.py                     # tiny and base presets, fp32 and bf16, a few batch sizes; memory of base
    python bench/bench_train_step.py --presets base --batches 2 --no-memory

For each preset, batch size and precision it times full training steps (forward, combined loss, backward,
the AdamW step `mmsent.train` builds) on a batch made by the real processor (32 tokens, 2 s of audio, one
image per sample), counts the model FLOPs of one step with `torch.utils.flop_counter.FlopCounterMode`, and
divides FLOPs by step time. The limit is the dense matmul peak measured in the same run (fp32 and bf16).
On a CUDA machine (`--device cuda`) it uses larger batches (tiny 32 and 128, base 8 and 32), also times the steps
under `torch.compile` at the largest batch of each preset, with dynamic shapes and with static ones (as `mmsent_train --compile`
does it: the loader pads text and audio to a few bucket lengths, one graph each), reports
memory with `torch.cuda.max_memory_allocated`, sets against each step the GPU's dense bf16 peak from its datasheet where
`common.DATASHEET_BF16_TFLOPS` knows the GPU, and writes bench/results/train_step_cuda.json.

Memory (`--memory`, default on the CPU): activation memory of a base training step, the peak RSS of forward +
backward above what the process holds before it (weights, gradients, AdamW state, the batch), with and
without gradient checkpointing, in fp32 and bf16, each in a fresh process. Prints tables and writes
bench/results/train_step.json; asserts nothing.
"""
import argparse, time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import common as C

GOAL_BF16_PEAK, GOAL_CKPT_CUT = 0.50, 0.40
GOAL_GPU_DATASHEET, GOAL_GPU_SCALING = 0.25, 2.5   # on a GPU: base bf16 at batch 32, share of the datasheet peak; step(32)/step(8)
SYNC_CALLS = ('cudaStreamSynchronize', 'cudaDeviceSynchronize', 'cudaEventSynchronize', 'cudaMemcpy')


def step_fn(model, opt, inputs, labels, precision, device='cpu'):
    with C.autocast(precision, device):
        out = model(**inputs, labels=labels, return_dict=True)
    out.loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)


def prepared(preset:str, B:int, device:str):
    "The preset's model in training mode on `device`, its AdamW, and a batch of `B` samples with labels there."
    torch.manual_seed(0)
    model, proc = C.build(preset)
    model.to(device).train()
    opt = C.optimizer(model, device)
    inputs, labels = C.batch(proc, preset, B)
    return model, opt, {k: v.to(device) for k, v in inputs.items()}, labels.to(device)


def bench_step(preset, precision, B, steps, device='cpu', compile:str|None=None):
    "One setting's step time, FLOPs and peak memory; `compile`: None (eager), 'dynamic' or 'static' shapes (as `mmsent_train --compile`)."
    model, opt, inputs, labels = prepared(preset, B, device)
    fwd = torch.compile(model, dynamic=compile == 'dynamic') if compile else model
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    def run(): step_fn(fwd, opt, inputs, labels, precision, device); sync()
    run()   # warm-up: allocations, AdamW state (and compilation)
    with FlopCounterMode(display=False) as fc: step_fn(model, opt, inputs, labels, precision, device)
    flops = fc.get_total_flops()
    if device == 'cuda': torch.cuda.reset_peak_memory_stats()
    s = C.median_time(run, steps, warmup=1 if compile else 0)
    r = dict(preset=preset, precision=precision, compile=compile, batch=B, step_s=s, samples_per_s=B/s, gflop_per_step=flops/1e9, gflops=flops/s/1e9)
    if device == 'cuda': r['peak_mem_mib'] = torch.cuda.max_memory_allocated()/2**20
    return r


def trace_summary(kernels:list[tuple[float, float]], host_calls:list[str], wall_us:float, steps:int)->dict:
    """A profiler trace in three figures: the share of the wall time in which some GPU kernel runs (the union of the
    kernels' [start, end) intervals, in µs), kernels per step, and host-device synchronisations per step."""
    busy, end = 0.0, float('-inf')
    for a, b in sorted(kernels):
        if b > end: busy, end = busy + b - max(a, end), b
    return dict(gpu_busy=busy/wall_us if wall_us else 0.0, kernels_per_step=len(kernels)/steps,
                syncs_per_step=sum(name in SYNC_CALLS for name in host_calls)/steps, steps=steps)


def trace_step(preset:str, precision:str, B:int, steps:int=3)->dict:
    "`trace_summary` of `steps` CUDA training steps (after a warm-up), with `torch.profiler`."
    from torch.profiler import ProfilerActivity, profile
    model, opt, inputs, labels = prepared(preset, B, 'cuda')
    for _ in range(2): step_fn(model, opt, inputs, labels, precision, 'cuda')
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps): step_fn(model, opt, inputs, labels, precision, 'cuda')
        torch.cuda.synchronize()
        wall_us = (time.perf_counter() - t0)*1e6
    events = prof.events()
    kernels = [(e.time_range.start, e.time_range.end) for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    host = [e.name for e in events if e.device_type == torch.autograd.DeviceType.CPU]
    return dict(preset=preset, precision=precision, batch=B, **trace_summary(kernels, host, wall_us, steps))


def activation_memory_child(preset, grad_ckpt, precision, B):
    "Peak RSS of forward + backward above the RSS before it (MiB), in a fresh process; gradients already allocated."
    out = C.in_child(f"""
import torch, common as C, bench_train_step as b
torch.manual_seed(0); m, p = C.build({preset!r}, {grad_ckpt}); m.train(); o = C.optimizer(m)
i, y = C.batch(p, {preset!r}, {B})
b.step_fn(m, o, i, y, {precision!r}); o.zero_grad(set_to_none=False)   # AdamW state and gradient buffers now exist
C.reset_peak_rss(); r0 = C.status_mib('VmRSS')
with C.autocast({precision!r}): loss = m(**i, labels=y, return_dict=True).loss
loss.backward(); print(r0, C.status_mib('VmHWM'))""")
    before, peak = map(float, out.split()[-2:])
    return dict(preset=preset, grad_checkpointing=grad_ckpt, precision=precision, batch=B, rss_before_mib=before, peak_rss_mib=peak,
                activation_mib=peak - before)


def gpu_goals(ok:list[dict], rows:list[dict], goals:dict, sheet:float|None)->dict|None:
    """The GPU goals of a host-light step, added to `goals`: the base bf16 step at batch 32 (the best of eager and compiled)
    against the datasheet peak, step(32)/step(8) in eager bf16, and whether the `--compile` step (static shapes) ran.
    Returns the profiler's summary of the base bf16 step at batch 32, or None when it failed."""
    pick = lambda b, comp: next((r for r in ok if (r['preset'], r['precision'], r['batch'], r['compile']) == ('base', 'bf16', b, comp)), None)
    b32 = [r for r in ok if (r['preset'], r['precision'], r['batch']) == ('base', 'bf16', 32)]
    if b32 and sheet:
        best = max(b32, key=lambda r: r['gflops'])
        goals['gpu_base_bf16_b32_datasheet'] = dict(value=best['gflops']/sheet, goal=GOAL_GPU_DATASHEET, batch=32, compile=best['compile'],
                                                    samples_per_s=best['samples_per_s'])
    if pick(32, None) and pick(8, None):
        goals['gpu_base_bf16_step_32_over_8'] = dict(value=pick(32, None)['step_s']/pick(8, None)['step_s'], goal=GOAL_GPU_SCALING)
    static = [r for r in rows if r['compile'] == 'static']
    if static: goals['gpu_compile_step_runs'] = dict(value=all('error' not in r for r in static), goal=True,
                                                     errors=[r['error'] for r in static if 'error' in r])
    for k, g in goals.items():
        if k.startswith('gpu_'): print(f"goal {k}: {g['value']} (goal {g['goal']})")
    try: trace = trace_step('base', 'bf16', 32)
    except Exception as e:   # a failed trace is reported; the timed rows stay
        print(f"profiler trace failed: {type(e).__name__}: {e}"); return None
    print(f"trace of the base bf16 step at batch 32: GPU busy {trace['gpu_busy']:.0%} of the wall time, "
          f"{trace['kernels_per_step']:.0f} kernels and {trace['syncs_per_step']:.1f} synchronisations a step")
    return trace


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--presets', nargs='+', default=['tiny', 'base'])
    ap.add_argument('--batches', nargs='+', type=int, help='batch sizes (default: tiny 8 16 32, base 1 2 4; on CUDA tiny 32 128, base 8 32)')
    ap.add_argument('--steps', type=int, default=3, help='timed steps per setting (median)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--compile', nargs='*', default=['dynamic', 'static'], choices=['dynamic', 'static'],
                    help="on CUDA, torch.compile rows at each preset's largest batch: dynamic shapes and/or static (as mmsent_train --compile, with shape buckets)")
    ap.add_argument('--no-memory', action='store_true', help='skip the activation-memory measurements')
    ap.add_argument('--memory_batches', nargs='+', type=int, default=[2, 8])
    a = ap.parse_args()
    dev = a.device
    torch.manual_seed(0)
    peaks = {'fp32': C.matmul_peak(torch.float32, dev), 'bf16': C.matmul_peak(torch.bfloat16, dev)}
    print(f"machine: {C.machine()}")
    print(f"dense matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    sheet = C.datasheet_bf16_gflops(dev)
    if sheet: print(f"datasheet dense bf16 peak of {torch.cuda.get_device_name(0)}: {sheet:.0f} GFLOP/s")
    rows = []
    for preset in a.presets:
        batches = a.batches or {('base', 'cpu'): [1, 2, 4], ('tiny', 'cpu'): [8, 16, 32], ('base', 'cuda'): [8, 32], ('tiny', 'cuda'): [32, 128]}[preset, dev]
        for B in batches:
            for prec, comp in [('fp32', None), ('bf16', None)] + ([('bf16', c) for c in a.compile] if dev == 'cuda' and B == max(batches) else []):
                try: r = bench_step(preset, prec, B, a.steps, dev, comp)
                except Exception as e:   # a compiler failure is a result to report, not a reason to lose the other rows
                    rows.append(dict(preset=preset, precision=prec, compile=comp, batch=B, error=f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"))
                    print(f"  {preset} batch {B} {prec} compile={comp}: failed: {rows[-1]['error']}", flush=True); torch.cuda.empty_cache(); continue
                r['frac_fp32_peak'], r['frac_bf16_peak'] = r['gflops']/peaks['fp32'], r['gflops']/peaks['bf16']
                if sheet: r['frac_datasheet_bf16'] = r['gflops']/sheet
                rows.append(r); print(f"  {preset} batch {B} {prec}{f' compiled ({comp} shapes)' if comp else ''}: {r['step_s']:.3f} s/step", flush=True)
    ok = [r for r in rows if 'error' not in r]
    print('\n' + C.table(ok, [('preset', 'preset', 's'), ('precision', 'prec', 's'), ('compile', 'compile', ''), ('batch', 'batch', 'd'),
                                ('step_s', 'step s', '.3f'), ('samples_per_s', 'samples/s', '.1f'), ('gflop_per_step', 'GFLOP/step', '.1f'),
                                ('gflops', 'GFLOP/s', '.1f'), ('frac_fp32_peak', '/fp32 peak', '.0%'), ('frac_bf16_peak', '/bf16 peak', '.0%')]
                                + ([('frac_datasheet_bf16', '/datasheet bf16', '.0%'), ('peak_mem_mib', 'GPU MiB', '.0f')] if dev == 'cuda' else [])))
    base_bf16 = [r for r in ok if r['preset'] == 'base' and r['precision'] == 'bf16']
    goals = {}
    if base_bf16:
        best = next((r for r in base_bf16 if r['batch'] == 2), None) or max(base_bf16, key=lambda r: r['frac_bf16_peak'])   # batch 2: the goal's setting
        fp32 = next((r for r in ok if r['preset'] == 'base' and r['precision'] == 'fp32' and r['batch'] == best['batch']), None)
        if sheet: goals['base_bf16_frac_of_datasheet_bf16'] = dict(value=best['gflops']/sheet, batch=best['batch'], compile=best['compile'], datasheet_gflops=sheet)
        goals['base_bf16_frac_of_bf16_peak'] = dict(value=best['frac_bf16_peak'], goal=GOAL_BF16_PEAK, batch=best['batch'],
                                                    speedup_over_fp32=fp32['step_s']/best['step_s'] if fp32 else None)
        v = best['frac_bf16_peak']
        print(f"\ngoal: base bf16 step at >= {GOAL_BF16_PEAK:.0%} of the bf16 peak: {v:.0%} at batch {best['batch']} "
              f"({'met' if v >= GOAL_BF16_PEAK else f'short by {100*(GOAL_BF16_PEAK - v):.0f} points'}), "
              f"{goals['base_bf16_frac_of_bf16_peak']['speedup_over_fp32']:.2f}x the fp32 step")
    trace = None
    if dev == 'cuda': trace = gpu_goals(ok, rows, goals, sheet)
    mem = []
    if not a.no_memory and dev == 'cpu' and 'base' in a.presets:
        for B in a.memory_batches:
            for prec in ('fp32', 'bf16'):
                for ck in (False, True):
                    mem.append(activation_memory_child('base', ck, prec, B)); print(f"  memory: base batch {B} {prec} ckpt={ck}: "
                                                                                  f"{mem[-1]['activation_mib']:.0f} MiB", flush=True)
        for m in mem:
            plain = next(x for x in mem if x['batch'] == m['batch'] and x['precision'] == m['precision'] and not x['grad_checkpointing'])
            m['cut_by_checkpointing'] = 1 - m['activation_mib']/plain['activation_mib'] if m['grad_checkpointing'] else None
        print('\nactivation memory of a base training step (peak RSS of forward + backward above the resident weights, gradients and AdamW state)')
        print(C.table(mem, [('batch', 'batch', 'd'), ('precision', 'prec', 's'), ('grad_checkpointing', 'ckpt', ''), ('rss_before_mib', 'resident MiB', '.0f'),
                            ('activation_mib', 'activations MiB', '.0f'), ('cut_by_checkpointing', 'cut', '.0%')]))
        big = [m for m in mem if m['grad_checkpointing'] and m['precision'] == 'fp32']
        if big:
            m = max(big, key=lambda m: m['batch'])
            goals['checkpointing_activation_cut'] = dict(value=m['cut_by_checkpointing'], goal=GOAL_CKPT_CUT, batch=m['batch'])
            print(f"goal: gradient checkpointing cuts activation memory by >= {GOAL_CKPT_CUT:.0%}: {m['cut_by_checkpointing']:.0%} at batch {m['batch']} (fp32)"
                  + ('' if m['cut_by_checkpointing'] >= GOAL_CKPT_CUT else f", short by {100*(GOAL_CKPT_CUT - m['cut_by_checkpointing']):.0f} points"))
    C.write('train_step' + ('_cuda' if dev == 'cuda' else ''), dict(matmul_peak_gflops=peaks, datasheet_bf16_gflops=sheet, steps=rows, memory=mem, goals=goals,
                                                                 **({'trace': trace} if trace else {})))


if __name__ == '__main__':
    main()
