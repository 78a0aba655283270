"""Run every benchmark in turn (each in its own process), then regenerate the docs page `nbs/98_benchmarks.ipynb` from their JSON.

    python bench/run_all.py              # about 16 minutes on 2 CPU cores, plus a few for the ONNX export of the base model
    python bench/run_all.py --report     # only regenerate the page from bench/results/*.json

Run it on an otherwise idle machine: the figures are wall-clock times.
"""
import argparse, json, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = ['bench_train_step.py', 'bench_step_ops.py', 'bench_import.py', 'bench_data.py', 'bench_cache.py', 'bench_inference.py', 'bench_audio_batching.py', 'bench_serve.py',
           'bench_modality_seeds.py', 'bench_modality_seeds.py --forced', 'bench_numerics.py', 'bench_lora.py']
PAGE = HERE.parent/'nbs'/'98_benchmarks.ipynb'


def md_table(rows:list[dict], cols:list[tuple])->str:
    "A markdown table: cols are (key, header, format)."
    fmt = lambda v, f: '–' if v is None else (('yes' if v else 'no') if isinstance(v, bool) else format(v, f))
    return '\n'.join(['| ' + ' | '.join(h for _, h, _ in cols) + ' |', '|' + '---|'*len(cols)] +
                     ['| ' + ' | '.join(fmt(r.get(k), f) for k, _, f in cols) + ' |' for r in rows])


def goal_line(name:str, g:dict, unit:str)->str:
    v, goal = g['value'], g['goal']
    ok = v >= goal
    show = (lambda x: f'{x:.0%}') if unit == '%' else (lambda x: f'{x:.2f}x' if x < 10 else f'{x:.1f}x')   # 1.14x, 153.2x
    gap = f"{100*(goal - v):.0f} points" if unit == '%' else show(goal - v)
    return f"- **{name}**: {show(v)} (goal {show(goal) if unit == '%' else f'{goal:g}x'}): " + ('met' if ok else f'**not met**, short by {gap}')


def step_reading(r:dict)->str:
    "What a training-step table says, in words, computed from its rows: how the base step scales and where bf16 stands."
    ok = [x for x in r['steps'] if 'error' not in x and not x.get('compile')]
    row = lambda preset, prec, b: next((x for x in ok if (x['preset'], x['precision'], x['batch']) == (preset, prec, b)), None)
    out = []
    base = sorted({x['batch'] for x in ok if x['preset'] == 'base'})
    if len(base) >= 2:
        lo, hi = base[0], base[-1]
        for prec in ('fp32', 'bf16'):
            a, b = row('base', prec, lo), row('base', prec, hi)
            if a and b: out.append(f"the base {prec} step at batch {hi} takes {b['step_s']/a['step_s']:.2f}x the time of batch {lo} "
                                   f"({hi/lo:.0f}x the samples)")
    both = [(b, row('base', 'fp32', b), row('base', 'bf16', b)) for b in base]
    both = [(b, f['step_s']/h['step_s']) for b, f, h in both if f and h]
    if both: out.append(f"bf16 is {', '.join(f'{x:.2f}x' for _, x in both)} as fast as fp32 at batch "
                        f"{', '.join(str(b) for b, _ in both)}")
    if base and (f := row('base', 'fp32', base[-1])): out.append(f"fp32 reaches {f['frac_fp32_peak']:.0%} of the fp32 matmul peak at batch {base[-1]}")
    tiny = [x['step_s'] for x in ok if x['preset'] == 'tiny']
    if len(tiny) >= 2: out.append(f"a tiny step takes {min(tiny):.3f} to {max(tiny):.3f} s at every batch and precision measured")
    return ('\nReading the table: ' + '; '.join(out) + '.') if out else ''


def serve_gpu_reading(gpu:dict, cpu:dict|None, inference:dict|None)->str:
    "The GPU serving figures against the CPU ones on this page, computed from both results."
    row = lambda r, preset, mode, c: next((x for x in r['rows'] if (x['preset'], x['mode'], x['concurrency']) == (preset, mode, c)), None)
    out = []
    for mode, c in (('batch 1', 1), ('batching', max(gpu['options']['concurrency']))):
        g = row(gpu, 'tiny', mode, c)
        h = row(cpu, 'tiny', mode, c) if cpu else None
        if g and h: out.append(f"the tiny model, {mode}, {c} in flight: {g['requests_per_s']:.0f} requests/s on the GPU against "
                               f"{h['requests_per_s']:.0f} on the CPU section's machine (p50 {g['p50_ms']:.0f} ms against {h['p50_ms']:.0f} ms)")
    g = row(gpu, 'base', 'batch 1', 1)
    cpu_one = next((x for x in (inference or {}).get('rows', [])
                    if (x['preset'], x['variant'], x['runtime']) == ('base', 'fp32', 'torch')), None)
    if g: out.append(f"the base model answers one request at a time in {g['p50_ms']:.0f} ms (p50)"
                     + (f", where the CPU inference benchmark takes {cpu_one['latency_ms']:.0f} ms for one sample in fp32 "
                        f"({cpu_one['threads']} thread{'s' if cpu_one['threads'] > 1 else ''})" if cpu_one else ''))
    g = row(gpu, 'base', 'batching', max(gpu['options']['concurrency']))
    if g: out.append(f"with batching it serves {g['requests_per_s']:.0f} requests/s at {g['concurrency']} in flight")
    return ('\nAgainst the CPU: ' + '; '.join(out) + '. GPU utilisation is not recorded by this benchmark.') if out else ''


def numerics_reading(rows:list[dict])->str:
    "What the numerics table says, in words, computed from its rows."
    n = rows[0]['resume_tensors']
    every = lambda k: all(x[k] == 0 for x in rows)
    s = [("A model with misaligned weights gives bit-equal outputs under every setting. " if every('misaligned_seeds') else
          f"A model with misaligned weights differs under {sum(x['misaligned_seeds'] > 0 for x in rows)} of {len(rows)} settings. "),
         ("mmsent's load path resumes bit-equal under every setting. " if every('resume_differ') else
          f"mmsent's load path resumes with some tensor not bit-equal under {sum(x['resume_differ'] > 0 for x in rows)} settings. ")]
    exact = [x['setting'] for x in rows if x['resume_misaligned_differ'] == 0]
    worst = max(rows, key=lambda x: x['resume_misaligned_max'])
    if len(exact) < len(rows):
        s.append(f"A resume whose restored tensors are left misaligned ends with up to {max(x['resume_misaligned_differ'] for x in rows)} "
                 f"of the {n} weight tensors away from the uninterrupted run (at most {worst['resume_misaligned_max']:.1e}), under every "
                 "setting" + (f" except {', '.join(f'`{e}`' for e in exact)}" if exact else '') + ". ")
    if 'MKL_CBWR=COMPATIBLE' in exact:
        s.append("`MKL_CBWR=COMPATIBLE` is MKL's reproducible mode, whose results do not depend on where a tensor starts in memory. ")
    native = next(x for x in rows if x['setting'] == 'native')
    same = [x['setting'] for x in rows if x is not native and x['vs_native'] == 0 and all(
            x[k] == native[k] for k in ('resume_differ', 'resume_misaligned_differ', 'resume_misaligned_max'))]
    if same: s.append(f"{', '.join(f'`{e}`' for e in same)} gives the native results on this machine. ")
    s.append("CI's forced-kernel setting (the last row) includes `MKL_ENABLE_INSTRUCTIONS=AVX2` because on an Intel CPU it "
             "moves MKL off its AVX-512 kernels.")
    return '\n' + ''.join(s)


def served_by(o:dict)->str:
    "How many model workers served a serving benchmark: its `--workers`, or the default of the code measured."
    args = o.get('serve_args') or []
    if '--workers' in args:
        n = int(args[args.index('--workers') + 1])
        return f"{n} worker{'s' if n > 1 else ''} (`--workers {n}`)"
    return "the default number of workers"

def machine_line(r:dict)->str:
    "The command, date and machine of a result, the PyTorch CPU capability included (it decides which kernels run)."
    mc = r['machine']
    bf16 = '+'.join(k.upper() for k, v in mc.get('cpu_bf16', {}).items() if v)
    cap = f", PyTorch CPU capability {mc['cpu_capability']}{'+' + bf16 if bf16 else ''}" if mc.get('cpu_capability') else ''
    gpu = f"GPU {mc['cuda']}, " if mc.get('cuda') else ''
    return (f"`{r['command']}` ({r['date']}; {gpu}{mc.get('cpu_model', mc['cpu'])}{cap}, "
            f"{mc['cores']} cores, {mc['threads']} thread{'' if mc['threads'] == 1 else 's'}, torch {mc['torch']}")


def train_step_section(r:dict, title:str)->str:
    "The training-step benchmark's tables and goals (CPU, or CUDA with compiled rows and the datasheet peak)."
    p, sheet = r['matmul_peak_gflops'], r.get('datasheet_bf16_gflops')
    ok, failed = [x for x in r['steps'] if 'error' not in x], [x for x in r['steps'] if 'error' in x]
    cols = [('preset', 'preset', 's'), ('precision', 'precision', 's')] + ([('compile', 'torch.compile', 's')] if any(x.get('compile') for x in ok) else []) + [
            ('batch', 'batch', 'd'), ('step_s', 's/step', '.3f'), ('samples_per_s', 'samples/s', '.1f'), ('gflop_per_step', 'GFLOP/step', '.1f'), ('gflops', 'GFLOP/s', '.0f'),
            ('frac_fp32_peak', 'of fp32 peak', '.0%'), ('frac_bf16_peak', 'of bf16 peak', '.0%')]
    if sheet: cols.append(('frac_datasheet_bf16', 'of datasheet bf16', '.1%'))
    if any('peak_mem_mib' in x for x in ok): cols.append(('peak_mem_mib', 'GPU MiB', '.0f'))
    s = [f"## {title}\n\n{machine_line(r)})\n",
         f"Dense matmul peak measured in the same run: fp32 **{p['fp32']:.0f}** GFLOP/s, bf16 **{p['bf16']:.0f}** GFLOP/s"
         + (f"; the GPU's datasheet gives **{sheet:.0f}** GFLOP/s dense bf16" if sheet else '') + ". "
         "A step is forward, combined loss, backward and the AdamW step; FLOPs are counted with `FlopCounterMode`.\n",
         md_table([{**x, 'frac_fp32_peak': x['frac_fp32_peak'] if x['precision'] == 'fp32' else None, 'compile': x.get('compile') or '–'} for x in ok], cols)]
    if failed: s += ['\nFailed:\n'] + [f"- {x['preset']}, batch {x['batch']}, {x['precision']}, torch.compile with {x['compile']} shapes: `{x['error']}`" for x in failed]
    s.append(step_reading(r))
    return '\n'.join(s)


def step_ops_section(r:dict)->str:
    "Operators per training step, before and after, eager and compiled, and the data-dependent ones."
    rows = [dict(code=name, preset=p, **x, where=', '.join(f"{k.removeprefix('aten::')} {v}" for k, v in x['step_data_dependent_ops'].items()) or 'none')
            for name, runs in r['runs'].items() for p, x in runs.items()]
    cols = [('code', 'code', 's'), ('preset', 'preset', 's'), ('forward_ops', 'forward: operators', 'd'), ('forward_data_dependent', 'data-dependent', 'd'),
            ('step_ops', 'step: operators', 'd'), ('step_data_dependent', 'data-dependent', 'd'), ('graph_breaks', 'graph breaks', 'd'),
            ('where', 'data-dependent, by kind', 's')]
    prow = [dict(code=name, preset=p, eager=x.get('profiled_ops'), compiled=x.get('compiled_ops'), dd=x.get('compiled_data_dependent'),
                 top=', '.join(f"{k.removeprefix('aten::')} {v}" for k, v in (x.get('compiled_top') or {}).items()) or None)
            for name, runs in r['runs'].items() for p, x in runs.items() if x.get('profiled_ops') is not None]
    pcols = [('code', 'code', 's'), ('preset', 'preset', 's'), ('eager', 'eager step: operators', 'd'), ('compiled', '`--compile` step: operators', 'd'),
             ('dd', 'data-dependent', 'd'), ('top', 'most frequent in the compiled step', 's')]
    names = list(r['runs'])
    goals = []
    if len(names) == 2:
        before, after = r['runs'][names[0]], r['runs'][names[1]]
        for p in after:
            if p not in before: continue
            b, a = before[p], after[p]
            cut = 1 - a['step_ops']/b['step_ops']
            line = (f"- **{p}**: operators per eager step {b['step_ops']} → {a['step_ops']} ({cut:.0%} fewer; goal 40%: "
                    + ('met' if cut >= 0.40 else '**not met**') + ")")
            if b.get('profiled_ops') and a.get('compiled_ops'):
                ccut = 1 - a['compiled_ops']/b['profiled_ops']
                line += (f"; counted with the profiler, {b['profiled_ops']} in the eager step before → {a['compiled_ops']} in the `--compile` step "
                         f"({ccut:.0%} fewer; goal 40%: " + ('met' if ccut >= 0.40 else '**not met**') + ")")
            line += (f"; data-dependent per step {b['step_data_dependent']} → {a['step_data_dependent']} (goal at most 1: "
                     + ('met' if a['step_data_dependent'] <= 1 else '**not met**') + f"), in the forward {b['forward_data_dependent']} → "
                     f"{a['forward_data_dependent']} (goal 0: " + ('met' if a['forward_data_dependent'] == 0 else '**not met**') + ")")
            goals.append(line)
    shares = [f"{p} {x['compiled_ops']/x['profiled_ops']:.0%}" for runs in list(r['runs'].values())[-1:] for p, x in runs.items()
              if x.get('compiled_ops') and x.get('profiled_ops')]
    return '\n'.join([f"## Operators in a training step\n\n{machine_line(r)})\n",
                       "One training step with the default options (modality dropout 0.1, the single-modality fusion loss, the auxiliary heads; "
                       "AdamW), on 8 samples whose clips last 2 to 9 s, one without audio and one without an image; base from its configs, with "
                       "Wav2Vec2-base's group-norm layout. Every operator is counted with a `TorchDispatchMode`. A data-dependent operator reads a "
                       "value of a tensor, or makes a shape from its values (`item`, `nonzero`, boolean indexing): on a GPU the host waits there "
                       "for the device. The first rows are the code before the change, measured in the same run.\n",
                       md_table(rows, cols),
                       "\nThe step that `mmsent_train --compile` runs (the model compiled with static shapes, as `train` compiles it) cannot be "
                       "counted with a `TorchDispatchMode`: `torch.compile` refuses to trace under one. So both steps are counted again with "
                       "`torch.profiler`: the ATen operators that no other ATen operator called (a `linear` counts once, not as its `t` and "
                       "`addmm`), in one warm step, backward and optimizer included.\n",
                       md_table(prow, pcols),
                       *([f"\nThe compiled step runs this share of the eager step's operators: {', '.join(shares)}.\n"] if shares else []),
                       '\nGoals:\n', *goals,
                       "\nGraph breaks: `torch._dynamo.explain` over the same training forward (unpadded, so with dynamic shapes); "
                       "`--compile` pads to shape buckets instead, and `tests/test_compile.py` checks that the tiny preset and the base preset's "
                       "layout are one graph there. Where the data-dependent operators were: the model's own presence checks, auxiliary losses, "
                       "modality dropout and tallies (now masks and device-side sums), and three places in Hugging Face's encoders that mmsent now "
                       "does its own way: SpecAugment's spans (drawn with NumPy on the host, now with torch on the device: `spec_augment`), "
                       "Wav2Vec2's transformer (boolean indexing to zero padded frames and an all-ones check on the mask: `speech_transformer`), "
                       "and the BERT-style encoders' all-ones check on the attention mask (`prepared_mask`). In the eager step most operators are "
                       "the encoders' own layers and autograd's (`view`, `t`, `detach` per parameter); a CPU step in fp32 has none of the autocast "
                       "casts that a bf16 step on a GPU has."])


def import_section(r:dict)->str:
    "The cost of `import mmsent` against `import torch`, before and after."
    rows = [dict(code=name, torch=x['seconds']['import torch'], mmsent=x['seconds']['import mmsent'], ratio=x['mmsent_over_torch'],
                 model=x['seconds']['import mmsent.model']) for name, x in r['runs'].items()]
    cols = [('code', 'code', 's'), ('torch', '`import torch`, s', '.2f'), ('mmsent', '`import mmsent`, s', '.2f'), ('ratio', 'ratio', '.2f'),
            ('model', '`import mmsent.model`, s', '.2f')]
    last = rows[-1]
    return '\n'.join([f"## Import time\n\n{machine_line(r)})\n",
                      f"Each statement in a fresh Python process, the median of {r['repeats']} (less an empty interpreter's start). `import mmsent` "
                      "imports no modelling code: it registers mmsent with the Hugging Face Auto classes when they first look up a saved mmsent "
                      "folder, and each submodule (`mmsent.model`, `mmsent.train`, ...) loads when it is first used. When there are two rows, the "
                      "first is the code before this change, measured in the same run.\n", md_table(rows, cols), '\nGoal:\n',
                      f"- `import mmsent` at most 1.2x `import torch`: {last['ratio']:.2f}x (" + ('met' if last['ratio'] <= 1.2 else '**not met**') + ")"])


def sections(res:dict)->list[str]:
    out = []
    if 'train_step' in res:
        r = res['train_step']
        s = [train_step_section(r, 'Training step')]
        if r.get('memory'):
            s += ["\nActivation memory of a base training step: peak RSS of forward + backward above what the process holds before it "
                  "(weights, gradients, AdamW state, the batch), each in a fresh process.\n",
                  md_table(r['memory'], [('batch', 'batch', 'd'), ('precision', 'precision', 's'), ('grad_checkpointing', 'checkpointing', ''),
                                         ('rss_before_mib', 'resident MiB', '.0f'), ('activation_mib', 'activations MiB', '.0f'),
                                         ('cut_by_checkpointing', 'cut', '.0%')])]
        g = r.get('goals', {})
        s.append('\nGoals:\n')
        if 'base_bf16_frac_of_bf16_peak' in g: s.append(goal_line(f"base bf16 step at batch {g['base_bf16_frac_of_bf16_peak']['batch']}, share of the bf16 peak "
                                                                             f"({g['base_bf16_frac_of_bf16_peak']['speedup_over_fp32']:.2f}x the fp32 step)", g['base_bf16_frac_of_bf16_peak'], '%'))
        if 'checkpointing_activation_cut' in g: s.append(goal_line(f"gradient checkpointing, activation memory cut at batch {g['checkpointing_activation_cut']['batch']}", g['checkpointing_activation_cut'], '%'))
        out.append('\n'.join(s))
    if 'step_ops' in res:
        out.append(step_ops_section(res['step_ops']))
    if 'import' in res:
        out.append(import_section(res['import']))
    if 'train_step_cuda' in res:
        r = res['train_step_cuda']; g = r.get('goals', {}).get('base_bf16_frac_of_bf16_peak')
        out.append(train_step_section(r, 'Training step on a GPU') + ('\n\nGoal:\n\n' + goal_line(
            f"base bf16 step at batch {g['batch']}, share of the measured bf16 peak ({g['speedup_over_fp32']:.2f}x the fp32 step)", g, '%') if g else ''))
    if 'data' in res:
        r = res['data']
        out.append('\n'.join([f"## Data pipeline\n\n{machine_line(r)})\n",
                              f"Training consumes **{r['training_samples_per_s']:.0f}** samples/s (tiny preset, batch {r['batch_size']}); "
                              f"the loader (decode, resample, preprocess, collate) delivers:\n",
                              md_table(r['loaders'], [('inputs', 'inputs', 's'), ('workers', 'workers', 'd'), ('samples_per_s', 'samples/s', '.0f'),
                                                      ('ratio', '× training', '.2f')]),
                              '\nGoal:\n', goal_line('loader over training, 2 workers, WAV+PNG', r['goals']['loader_over_training_2_workers'], 'x'),
                              "\nOn 2 cores the workers share the cores the main process would use, and PyTorch runs each worker single-threaded, "
                              "so 2 workers deliver only 1.2-1.5x what the main process alone does; the ratio to training moved between 2.3x and "
                              "3.3x over four runs of this script on this machine, so it sits at the goal, not clearly above it."]))
    if 'cache' in res:
        r = res['cache']
        out.append('\n'.join([f"## Feature cache\n\n{machine_line(r)}): training with frozen encoders for {r['epochs']} epochs, "
                              "features cached (computed once, before the first epoch) vs computed every epoch. The cache build is the "
                              "one-off cost of computing the train and val splits' features.\n",
                              md_table(r['runs'], [('preset', 'preset', 's'), ('n', 'samples', 'd'), ('feature_cache', 'cache', ''),
                                                   ('later_epoch_s', 's/epoch after the first', '.3f'), ('speedup', '× uncached', '.1f'),
                                                   ('cache_build_s', 'cache build s', '.1f'), ('wall_s', 'whole run s', '.1f')]),
                              '\nGoals:\n'] + [goal_line(f"cached epochs over uncached, {k.split('_')[-1]} preset", g, 'x') for k, g in r['goals'].items()] +
                             ["\nThe cache saves the encoders' forward pass and the decoding of files. The tiny preset's encoders cost almost nothing, "
                              "so an uncached tiny epoch is mostly decoding and a cached one is the fusion layer's own training steps (under a "
                              "millisecond a sample): its ratio stays near 10x. With base encoders, the case the cache is for, cached epochs are "
                              "hundreds of times faster."]))
    if 'inference' in res:
        r = res['inference']
        engines = [k for k in ('onednn', 'fbgemm', 'qnnpack') if any(k in x for x in r.get('kernels', []))]
        load = f"; load average {r['load_average'][0]:.1f} at the start, {r['load_average'][1]:.1f} at the end" if 'load_average' in r else ''
        mc, ort = r['machine'], r.get('onnxruntime')
        cpu = f"{mc.get('cpu_model', mc['cpu'])}, PyTorch CPU capability {mc.get('cpu_capability') or 'not recorded'}"
        threads = r.get('threads', mc['threads'])
        ort_note = (f"The `ort` rows are ONNX Runtime {ort} (CPU execution provider) on the graphs `mmsent.export.export_onnx(..., int8=True)` writes: "
                    "`model.onnx` (fp32) and `model.int8.onnx` (ONNX Runtime's dynamic int8 quantization: int8 weights, activations quantized at run time), "
                    "run by `mmsent.predict.OnnxBackend` on the same processor batch as the PyTorch rows, with as many intra-op threads as PyTorch "
                    f"({threads}). All rows ran on {cpu}: ONNX Runtime, like PyTorch, picks its kernels by the CPU's instruction sets. "
                    + ' '.join(f"Saving and exporting the {p} model took {e['seconds']:.0f} s (" + ', '.join(f"`{k}` {v:.0f} MiB" for k, v in e['mib'].items()) + ")."
                              for p, e in r.get('onnx_export', {}).items())).strip() if ort else ''
        out.append('\n'.join([f"## Inference\n\n{machine_line(r)}{load})\n",
                              f"Every row ran on {cpu}, {threads} intra-op thread{'s' if threads != 1 else ''}" + (f"; ONNX Runtime {ort}" if ort else '') + ".\n",
                              md_table(r['rows'], [('preset', 'preset', 's'), ('variant', 'variant', 's'), ('kernel', 'int8 kernel', 's'), ('latency_ms', 'ms, batch 1', '.1f'),
                                                   ('speedup_latency', '× fp32', '.2f'), ('batch', 'batch', 'd'), ('samples_per_s', 'samples/s', '.1f'),
                                                   ('speedup_throughput', '× fp32', '.2f'), ('agree_fp32', 'agrees with fp32', '.0%'),
                                                   ('max_abs_diff_fp32', 'max \\|Δ logits\\| vs fp32', '.1e'), ('threads', 'threads', 'd')]),
                              "\nbf16 is CPU autocast; int8 is `mmsent.compress.quantize_int8` (int8 weights per output channel, activations quantized "
                              "at run time, the product in the quantized engine it timed as fastest on this CPU), forced here even where its guard "
                              "would keep fp32. The models are random-init, so 'agrees' compares predicted classes only; the largest difference of "
                              "the fused logits from PyTorch fp32's, over the throughput batch, says how close the numbers are. " + ort_note + "\n"] +
                             [f"- int8 guard, {p} preset: over the model's linear layers fp32 takes {g['ms']['fp32']} ms, "
                              + ', '.join(f"{k} {v} ms" for k, v in g['ms'].items() if k != 'fp32')
                              + f" ({g['cpu_capability']}, {g['threads']} threads): `quantize_int8` "
                              + ('quantizes' if g['ms'][g['kernel']] < g['ms']['fp32'] else '**keeps fp32**') for p, g in r.get('int8_guard', {}).items()] +
                             (["\n### One linear layer, by kernel\n",
                               md_table(r['kernels'], [('shape', 'layer', 's'), ('tokens', 'tokens', 'd'), ('in_features', 'in', 'd'), ('out_features', 'out', 'd'),
                                                       ('threads', 'threads', 'd'), ('cpu_capability', 'CPU capability', 's'), ('fp32', 'fp32 ms', '.3f'),
                                                       ('bf16', 'bf16 ms', '.3f'), ('int_mm', '`_int_mm` ms (old)', '.3f')] +
                                        [(k, f'{k} ms', '.3f') for k in engines]),
                               "\nMedian of 20 calls (`_int_mm`: 5). `_int_mm` is the kernel `quantize_int8` used before; on an AVX2-only "
                               "AMD EPYC (Zen 3) it took 947 ms for the base shape that fp32 did in 35 ms and fbgemm in 22 ms, hence the change. "
                               "The 2-thread figures come from a machine whose 2 cores were shared with other work: where a tiny layer takes "
                               "milliseconds, that is threads waiting for a core, not the kernel."] if r.get('kernels') else [])))
    if 'audio_batching' in res:
        r = res['audio_batching']; mc, au = r['machine'], r['audio']
        out.append('\n'.join([f"## Audio batching\n\n{machine_line(r)}; load average "
                              f"{r['load_average'][0]:.1f} at the start, {r['load_average'][1]:.1f} at the end)\n",
                              f"The base preset's audio encoder (Wav2Vec2 with group norm, random weights, fp32) on {au['batch']} clips of "
                              f"{', '.join(f'{x:.1f}' for x in sorted(au['clip_seconds']))} s: {au['real_seconds']:.0f} s of audio, "
                              f"{au['padded_seconds']:.0f} s once padded to the longest, {au['fixed_seconds']:.0f} s padded to 10 s. "
                              "The last columns give the largest difference between a clip's logits in the batch and on its own "
                              "(for `fixed 10 s`, on its own padded to 10 s), and between its logits in the batch and unpadded on its own.\n",
                              md_table(r['rows'], [('way', 'way', 's'), ('batch_s', 's/batch', '.2f'), ('clips_per_s', 'clips/s', '.2f'),
                                                   ('x_batched', '× padded, unmasked', '.2f'), ('max_dev', 'alone vs batch, largest', '.1e'),
                                                   ('shortest_dev', 'shortest clip', '.1e'), ('vs_unpadded', 'batch vs unpadded alone', '.1e')]),
                              "\n`padded, unmasked` is the Hugging Face recipe for group-norm checkpoints (the padded batch through the "
                              "encoder without a mask): a clip's logits depend on its neighbours. `mmsent` is `AudioSentimentModel.encode`: "
                              "one batched call in which the first convolution's group norm takes each clip's statistics over its own "
                              "frames, the frames past a clip's end are zeroed, and the transformer runs with a frame mask, so a clip's "
                              "logits are the ones it gets alone. `fixed 10 s` pads every clip to `max_audio_seconds`, as MMML (the "
                              "multimodal multi-loss fusion network of Wu et al., 2024) does: a clip's result no longer depends on its "
                              "neighbours, but every clip pays for 10 s, and a short clip's result is not what it would be unpadded."]))
    for key, title in (('serve', 'HTTP serving'), ('serve_cuda', 'HTTP serving, the model on a GPU')):
        if key not in res: continue
        r = res[key]; pl, o = r['payload'], r['options']
        modes = ', '.join(f"{k} `{' '.join(v)}`" for k, v in o['modes'].items())
        s = [f"## {title}\n\n{machine_line(r)}; load average {r['load_average'][0][0]:.1f} at the start, {r['load_average'][1][0]:.1f} at the end)\n",
             f"`mmsent_serve` (LitServe, {served_by(o)}, started by `mmsent.serve.running_server` on 127.0.0.1) under a closed-loop load generator "
             + (f"(wrk, one thread: a C program, so that the client takes little of the CPU the server needs) keeping 1 to {max(o['concurrency'])} requests "
                f"in flight for {o['max_seconds']:g} s a level" if o.get('client') == 'wrk' else
                f"(asyncio, httpx) keeping 1 to {max(o['concurrency'])} requests in flight, each level {o['requests']} requests or {o['max_seconds']:g} s, "
                "whichever comes first")
             + f", after an untimed warm-up; servers: {modes}. Every request is the same mixed JSON payload: "
             f"{pl['text_chars']} characters of text, a {pl['audio']} ({pl['audio_bytes']/1024:.0f} KiB) and a {pl['image']} "
             f"({pl['image_bytes']/1024:.0f} KiB), {pl['body_bytes']/1024:.0f} KiB a request. Failed: any answer but 200, or a connection "
             "error or timeout. Mean batch: samples per model call, from the server's `/metrics` (`mmsent_batch_size` sum and count) "
             "over the timed requests. RSS: the server's whole process tree, after the warm-up and after the last level.\n",
             md_table(r['rows'], [('preset', 'preset', 's'), ('mode', 'server', 's'), ('concurrency', 'in flight', 'd'), ('requests_per_s', 'requests/s', '.1f'),
                                  ('p50_ms', 'p50 ms', '.0f'), ('p99_ms', 'p99 ms', '.0f'), ('failed', 'failed', 'd'), ('sent', 'sent', 'd'),
                                  ('mean_batch', 'mean batch', '.1f'), ('rss_before_mib', 'RSS before MiB', '.0f'), ('rss_after_mib', 'RSS after MiB', '.0f')]),
             '\nGoals:\n']
        g = r['goals']
        s += [goal_line(f"dynamic batching over batch-1 serving, requests/s at {x['concurrency']} in flight, {k.split('_')[-1]} preset", x, 'x')
              for k, x in g.items() if k.startswith('batching_speedup')]
        f = g['failed_requests']
        s.append(f"- **failed requests**: {f['value']} of {f['sent']} (goal 0): " + ('met' if f['value'] == 0 else '**not met**'))
        if key == 'serve_cuda': s.append(serve_gpu_reading(r, res.get('serve'), res.get('inference')))
        out.append('\n'.join(s))
    out.append(gpu_goals_section(res.get('train_step_cuda'), res.get('serve_cuda'), res.get('serve')))
    if 'serve_compare' in res: out.append(serve_compare_section(res['serve_compare']))
    if 'modality_seeds' in res: out.append(modality_seeds_section(res['modality_seeds'], res.get('modality_seeds_forced')))
    if 'numerics' in res: out.append(numerics_section(res['numerics']))
    if 'lora' in res: out.append(lora_section(res['lora']))
    return out


def gpu_goals_section(step:dict|None, served:dict|None, cpu:dict|None)->str:
    """The GPU goals of a host-light training step and a busy server, each with its figure from `bash bench/gpu_checks.sh`
    or "not yet measured" where the results on this page are missing or older than the goal."""
    none = "not yet measured"
    g = (step or {}).get('goals', {})
    lines = []
    x = g.get('gpu_base_bf16_b32_datasheet')
    lines.append("- **base bf16 step at batch 32, share of the GPU's datasheet bf16 peak** (goal 25%): "
                 + (f"{x['value']:.0%}, {x['samples_per_s']:.0f} samples/s ({'compiled' if x['compile'] else 'eager'}): "
                    + ('met' if x['value'] >= x['goal'] else '**not met**') if x else none))
    x = g.get('gpu_base_bf16_step_32_over_8')
    lines.append("- **base bf16 step time at batch 32 over batch 8** (goal at least 2.5: four times the samples cost more than the "
                 "host's fixed time): " + (f"{x['value']:.2f}: " + ('met' if x['value'] >= x['goal'] else '**not met**') if x else none))
    x = g.get('gpu_compile_step_runs')
    lines.append("- **the `--compile` training step runs on the GPU**: "
                 + (('yes: met' if x['value'] else f"no: **not met** ({'; '.join(x['errors'])})") if x else none))
    x = (served or {}).get('goals', {}).get('gpu_base_served')
    lines.append(f"- **base served at 32 in flight** (goal at least 500 requests/s with p50 at most 80 ms): "
                 + (f"{x['value']:.0f} requests/s, p50 {x['p50_ms']:.0f} ms: "
                    + ('met' if x['value'] >= x['goal'] and x['p50_ms'] <= x['goal_p50_ms'] else '**not met**') if x else none))
    row = lambda r: next((y for y in r['rows'] if (y['preset'], y['mode'], y['concurrency']) == ('tiny', 'batching', 32)), None) if r else None
    gpu_tiny, cpu_tiny = (row(served), row(cpu)) if x else (None, None)
    lines.append("- **tiny served on the GPU at least as fast as on the CPU** (batching, 32 in flight): "
                 + (f"{gpu_tiny['requests_per_s']:.0f} against {cpu_tiny['requests_per_s']:.0f} requests/s: "
                    + ('met' if gpu_tiny['requests_per_s'] >= cpu_tiny['requests_per_s'] else '**not met**') if gpu_tiny and cpu_tiny else none))
    t = (step or {}).get('trace')
    trace = (f"A `torch.profiler` trace of {t['steps']} base bf16 steps at batch {t['batch']}: the GPU runs a kernel "
             f"{t['gpu_busy']:.0%} of the wall time, with {t['kernels_per_step']:.0f} kernels and {t['syncs_per_step']:.1f} "
             "host-device synchronisations a step." if t else
             "A `torch.profiler` trace of the base bf16 step (the GPU's busy share, kernels and synchronisations a step): " + none + ".")
    dates = sorted({r['date'] for r in (step, served) if r})
    return '\n'.join(["## GPU goals: a host-light training step and a busy server\n",
                       "`bash bench/gpu_checks.sh` measures these on a machine with one CUDA GPU. "
                       + (f"The GPU results on this page are from {' and '.join(dates)}"
                          + (", before these goals: the sections above keep their figures." if not any(k.startswith('gpu_') for k in g) and not x
                             else ".") if dates else
                          "No GPU results are on this page yet.") + "\n", *lines, '', trace])


def serve_compare_section(r:dict)->str:
    "Serving before and after a change, the two servers run one after the other in the same run."
    o = r['options']
    rows = r['rows']
    rounds = o.get('rounds', 1)
    cols = [('code', 'code', 's'), ('preset', 'preset', 's'), ('mode', 'server', 's')] + ([('round', 'round', 'd')] if rounds > 1 else []) + [
            ('concurrency', 'in flight', 'd'), ('requests_per_s', 'requests/s', '.1f'),
            ('p50_ms', 'p50 ms', '.0f'), ('p99_ms', 'p99 ms', '.0f'), ('failed', 'failed', 'd'), ('mean_batch', 'mean batch', '.1f'),
            ('rss_idle_mib', 'RSS idle MiB', '.0f')] + ([('idle_cpu', 'CPU idle (share of a core)', '.1%')] if 'idle_cpu' in rows[0] else [])
    goals = [goal_line(f"requests/s over {o['ref']} at {x['concurrency']} in flight, {k.split('_')[-1]} preset"
                       + (f" (medians of {rounds} rounds; the rounds' ratios {', '.join(f'{v:.2f}x' for v in x['per_round'])})" if rounds > 1 else ''), x, 'x')
             for k, x in r['goals'].items() if k.startswith('speedup_over')]
    return '\n'.join([f"## HTTP serving, before and after\n\n{machine_line(r)}; load average {r['load_average'][0][0]:.1f} at the start, "
                      f"{r['load_average'][1][0]:.1f} at the end)\n",
                      f"The same benchmark as above, for the code before the change (`{o['ref']}`, its package served from an extracted copy) and "
                      "after it (each server started from a folder outside the repository, where it imports the package named: the "
                      "benchmark checks it, and kills whatever process of a server outlives it), "
                      + (f"in turn, {rounds} rounds of both (this machine's speed drifts by more than 10% over minutes: the goal compares "
                         "the medians): " if rounds > 1 else "one after the other on the same machine: ")
                      + f"{o['max_seconds']:g} s at {', '.join(map(str, o['concurrency']))} "
                      "in flight, the same payload (text, a 1 s WAV and a 64x64 PNG), "
                      + ("with wrk (one thread) on the same 2 cores as the server. " if o.get('client') == 'wrk' else
                         f"with the asyncio httpx client (at most {o['requests']} requests a level) on the same 2 cores as the server. ")
                      + "The change: the server computes Shapley values only for a request with `\"explain\": true` (this benchmark's "
                      "requests do not ask), decodes requests in a thread pool while the model runs (`--decode_threads 2`, the "
                      "default), so that a model on a GPU does not wait for the decoding, reads the media from memory (no temporary file per "
                      "field), waits for requests with one blocking read of LitServe's queue, "
                      "renders each answer to JSON in the worker, computes a layer-norm audio encoder's "
                      "convolutions in (batch, time, channels) memory, "
                      "and on a CPU runs one worker per core by default (two here; before, one).\n",
                      md_table(rows, cols), '\nGoal:\n', *goals])


def lora_section(r:dict)->str:
    "LoRA against full fine-tuning: trainable parameters, optimizer state and peak memory of a base training step, in fp32 and bf16."
    rows = [dict(x, trainable_m=x['trainable']/1e6, total_m=x['total']/1e6, precision=x.get('precision', 'fp32')) for x in r['rows']]
    cols = [('setting', 'setting', 's'), ('precision', 'precision', 's'), ('grad_checkpointing', 'gradient checkpointing', ''), ('trainable_m', 'trainable (M)', '.2f'),
            ('total_m', 'of (M)', '.0f'), ('optimizer_state_mib', 'optimizer state (MiB)', ',.0f'), ('peak_rss_mib', 'peak memory (MiB)', ',.0f'),
            ('model_peak_mib', 'above the libraries (MiB)', ',.0f'), ('added_mib', 'above the loaded model (MiB)', ',.0f')]
    B = r['rows'][0]['batch']
    s = [f"## LoRA against full fine-tuning\n\n{machine_line(r)})\n",
         f"`python bench/bench_lora.py`: the base preset (built from its configs) at batch {B}, three AdamW steps in a fresh process per row, in fp32 and under bf16 "
         "autocast (where bf16 is native), LoRA in bf16 holding the encoders' frozen linear weights in bf16 as `mmsent_train` does. "
         "*Peak memory* is the process's resident-memory high-water mark over the steps (weights, gradients, AdamW state, activations); "
         "*above the libraries* is that peak less the process's memory once PyTorch and Transformers are imported (the model and its training); "
         "*above the loaded model* less the process with the model and the batch in memory (what the steps add).\n", md_table(rows, cols),
         '\nGoals (each against full fine-tuning without checkpointing in the same precision):\n']
    for k, g in r['goals'].items():
        rank, ck, prec = k.split('_')[1][1:], '_ckpt' in k, g.get('precision', 'fp32')
        s.append(goal_line(f"memory of full fine-tuning over LoRA r={rank} in {prec}{' with gradient checkpointing' if ck else ''} (above the libraries)", g, 'x')
                 + f"; whole process {g['total_cut']:.1f}x, above the loaded model {g['added_cut']:.1f}x"
                 + (f", against full fine-tuning with the same checkpointing {g['same_checkpointing_cut']:.1f}x" if 'same_checkpointing_cut' in g else ''))
    full = next(x for x in r['rows'] if x['lora_r'] is None and not x['grad_checkpointing'])
    s.append(f"\nWhere the memory goes: the weights take {full['total']*4/2**20:,.0f} MiB in float32 and the activations grow with the batch; "
             f"LoRA removes the gradients of the encoders' weights and AdamW's state ({full['optimizer_state_mib']:,.0f} MiB of it here), "
             "not the activations, which gradient checkpointing cuts; in bf16 the frozen weights and the activations take half as much.")
    return '\n'.join(s)


def modality_seeds_section(r:dict, forced:dict|None=None)->str:
    "The default run over seeds, natively and with forced kernels: every claim the README, the tutorial and the tests make about it, per seed."
    cols = [('seed', 'seed', 'd'), ('best_val', 'best val acc', '.3f'), ('fused', 'held-out acc', '.3f')] + [
            c for m, name in (('text', 'text'), ('audio', 'audio'), ('visual', 'image')) for c in (
            (f'{m}_only', f'fused, {name} only', '.3f'), (f'{m}_head', f'{name} head', '.3f'), (f'{m}_margin', 'difference', '+.3f'))] + [
            ('shapley', 'mean abs Shapley, largest first', 's'), ('holds', 'all claims hold', '')]
    def one(x:dict, title:str)->list[str]:
        rows = [dict(y, shapley=', '.join('image' if m == 'visual' else m for m in y['shapley_order'])) for y in x['rows']]
        text_first = sum(y['shapley_order'][0] == 'text' for y in x['rows'])
        failed = [f"seed {y['seed']}: {', '.join(k for k, v in y['claims'].items() if not v)}" for y in x['rows'] if not y['holds']]
        worst = ', '.join(f"{'image' if m == 'visual' else m} {v:+.3f}" for m, v in x['worst_margin'].items())
        fused, best = [y['fused'] for y in x['rows']], [y['best_val'] for y in x['rows']]
        env = ' '.join(f'{k}={v}' for k, v in x.get('env', {}).items())
        return [f"\n### {title}\n\n{machine_line(x)}{'; ' + env if env else ''})\n", md_table(rows, cols),
                f"\nBest validation accuracy {min(best):.3f} to {max(best):.3f}, held-out accuracy {min(fused):.3f} to {max(fused):.3f}; "
                f"the smallest difference per modality: {worst}. " + ('Every claim holds on every seed.' if not failed else 'Claims that fail: ' + '; '.join(failed) + '.')
                + f" Text has the largest mean absolute Shapley value on {text_first} of {len(rows)} seeds (not a claim: see the tutorial)."]
    claims = list(r['rows'][0]['claims'])
    s = ["## The default run over seeds\n",
         f"`{r['recipe']}` (the tiny preset on the built-in synthetic set) with each seed, one thread per run, then `mmsent_eval` on a held-out "
         f"synthetic set ({r['heldout']['n']} samples, seed {r['heldout']['seed']}), as the tutorial does. `fused, X only` is the fused model given only "
         f"modality X (the ablation's row), `X head` that modality's own head on the same samples; the promise is that the first is at most "
         f"{r['margin']*100:.0f} points below the second. The claims checked on every seed: " + '; '.join(claims) + '.\n']
    s += one(r, "On the CPU's own kernels")
    if forced: s += one(forced, 'With the kernels forced to another path (`bench_modality_seeds.py --forced`, as in CI\'s second pass)')
    return '\n'.join(s)


def numerics_section(r:dict)->str:
    "What each kernel setting changes on this machine: reloads and resumes against the original, bit for bit."
    cols = [('setting', 'setting', 's'), ('capability', 'PyTorch CPU capability', 's'), ('misaligned_seeds', f"misaligned reload differs (of {r['seeds']} seeds)", 'd'),
            ('vs_native', 'largest difference from native', '.1e'), ('resume_differ', 'resume: tensors not bit-equal', 'd'),
            ('resume_misaligned_differ', 'misaligned resume: tensors not bit-equal', 'd'), ('resume_misaligned_max', 'largest difference', '.1e')]
    n = r['rows'][0]['resume_tensors']
    return '\n'.join([
        f"## Numerics on other kernels\n\n{machine_line(r)})\n",
        "`python bench/bench_numerics.py`: for each environment setting, fresh processes compare the tiny model's outputs with the same weights "
        "placed 8 bytes past a 64-byte boundary (`mmsent.core.misaligned_copy`, where a file can leave them), and a 2-epoch training run with the "
        f"same run resumed from its step-4 checkpoint ({n} weight tensors at the end): once through mmsent's load path, which copies every restored "
        "tensor into PyTorch's memory (`mmsent.core.aligned_copy`), and once with the restored tensors left misaligned. CI runs the "
        "numerics-sensitive tests a second time under the last row's setting (`bash tools/dev.sh test-forced`).\n",
        md_table(r['rows'], cols), numerics_reading(r['rows'])])


def write_page(res:dict):
    intro = ("# Benchmarks\n> Speed and memory of mmsent on the machine the figures come from, how far they are from its limit, and the default run's claims over seeds and CPU kernels.",
             "Each table comes from a script in `bench/` (run them all with `python bench/run_all.py`, which also rewrites this page "
             "from `bench/results/*.json`). The figures are wall-clock times on the machine named under each heading, with nothing "
             "else running; the limit is the dense matmul peak measured in the same run. The sections without a GPU in their heading come "
             "from a 2-core CPU machine; those with one come from `bash bench/gpu_checks.sh` on the GPU they name (training steps with "
             "bf16 and `torch.compile`, and serving with the model on the GPU).")
    cells = [dict(cell_type='markdown', id=f'b{i:07d}', metadata={}, source=s.splitlines(True)) for i, s in enumerate([*intro, *sections(res)])]
    PAGE.write_text(json.dumps(dict(cells=cells, metadata={'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
                                    nbformat=4, nbformat_minor=5), indent=1, ensure_ascii=False) + '\n')
    print(f"wrote {PAGE}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--report', action='store_true', help='only regenerate the page')
    a = ap.parse_args()
    if not a.report:
        for b in BENCHES:
            t0 = time.time(); print(f"== {b}", flush=True)
            script, *args = b.split()
            subprocess.run([sys.executable, str(HERE/script), *args], check=True)
            print(f"== {b}: {time.time() - t0:.0f} s", flush=True)
    res = {p.stem: json.loads(p.read_text()) for p in sorted((HERE/'results').glob('*.json'))}
    write_page(res)


if __name__ == '__main__':
    main()
