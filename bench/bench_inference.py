"""Inference benchmark: latency at batch 1 and throughput at a larger batch, fp32 vs bf16 vs dynamic int8 in PyTorch and fp32 vs dynamic int8 in ONNX Runtime, tiny and base presets.

    python bench/bench_inference.py
    python bench/bench_inference.py --presets tiny --batch 32
    python bench/bench_inference.py --presets tiny --no-kernels      # quick check: no linear-layer micro-benchmark

The model is in eval mode under `torch.inference_mode`; inputs are made by the real processor once (32 tokens,
2 s of audio, one image per sample), so the figures are the model's, not decoding's. bf16 is CPU autocast;
int8 is `mmsent.compress.quantize_int8` (int8 weights per channel, activations quantized at run time, int8 matmuls in
the quantized engine it times as fastest here: oneDNN, fbgemm or QNNPACK; forced even where its guard would keep fp32, and
the guard's verdict recorded). The ONNX Runtime rows run the package's own export: the model is saved
(`save_pretrained`), exported by `mmsent.export.export_onnx(model_dir, out, int8=True)` in a child process (`model.onnx` and
ONNX Runtime's dynamic int8 `model.int8.onnx`; the export time is recorded), and timed through `mmsent.predict.OnnxBackend`
on the same processor batch the torch rows take, so both sides are the model alone, with ONNX Runtime's intra-op threads
equal to PyTorch's (`--threads`, default PyTorch's own). For the base preset the saved processor resizes images to 224 px (the base ViT's
size; the tiny processor's 64 px would be traced into the graph). A kernel micro-benchmark times one linear layer (fp32, bf16, the old `torch._int_mm` path,
each int8 engine) on tiny and base shapes at 1 and 2 threads, with the CPU capability. The fused logits of each variant are compared with PyTorch fp32's on the timed batch (largest |difference|, argmax agreement). Writes
bench/results/inference.json; asserts nothing.
"""
import argparse, copy, os, shutil, statistics, tempfile, time, warnings
from pathlib import Path

import torch

import common as C


def variants(model):
    from mmsent.compress import quantize_int8
    yield 'fp32', model, 'fp32'
    yield 'bf16', model, 'bf16'
    yield "int8", quantize_int8(model, check_speed=False), "fp32"


def export(model, proc, preset:str, tmp:Path)->tuple[Path, float]:
    "Save `model` with its processor under `tmp`, export it with `mmsent.export.export_onnx(..., int8=True)` in a child process: (export dir, seconds)."
    if preset == 'base':   # the graph fixes the image size the processor gives it at trace time: the base ViT's 224 px, as `C.batch` feeds it
        proc = copy.deepcopy(proc); proc.image_processor.size = {'height': 224, 'width': 224}
    t0 = time.perf_counter()
    model.save_pretrained(tmp/'model', processor=proc)
    C.in_child(f"from mmsent.export import export_onnx\nexport_onnx({str(tmp/'model')!r}, {str(tmp/'export')!r}, int8=True)")
    return tmp/'export', time.perf_counter() - t0


def ort_variants(export_dir:Path, threads:int):
    "(name, OnnxBackend) for `model.onnx` and `model.int8.onnx`, each with `threads` intra-op threads."
    from mmsent.predict import OnnxBackend
    for name, int8 in (('ort fp32', False), ('ort int8', True)):
        yield name, OnnxBackend(export_dir, int8=int8, device='cpu', threads=threads)


def _ms(fn, n=20):
    fn(); ts = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return 1e3*statistics.median(ts)


def kernel_rows(shapes, threads):
    "One linear layer (tokens x in -> out) timed in fp32, bf16, the old torch._int_mm path and each int8 engine."
    from mmsent.compress import Int8DynamicLinear, int8_candidates
    rows, old = [], torch.get_num_threads()
    for t in threads:
        torch.set_num_threads(t)
        for name, (n, i, o) in shapes:
            torch.manual_seed(0)
            lin, x = torch.nn.Linear(i, o).eval(), torch.randn(n, i)
            q = Int8DynamicLinear.from_float(lin)
            w, s = q.weight_int8, q.weight_scale
            def int_mm():   # the kernel quantize_int8 used before: per-row int8 activations, torch._int_mm
                xs = x.abs().amax(1, keepdim=True).clamp(min=1e-12)/127
                return torch._int_mm((x/xs).round().clamp(-127, 127).to(torch.int8), w.t()).float()*xs*s + lin.bias
            lb, xb = torch.nn.Linear(i, o).bfloat16().eval(), x.bfloat16()
            r = dict(shape=name, tokens=n, in_features=i, out_features=o, threads=t, cpu_capability=torch.backends.cpu.get_cpu_capability())
            with torch.inference_mode():
                r['fp32'], r['bf16'], r['int_mm'] = _ms(lambda: lin(x)), _ms(lambda: lb(xb)), _ms(int_mm, 5)
                for k in int8_candidates():
                    qk = Int8DynamicLinear.from_float(lin, k); r[k] = _ms(lambda: qk(x))
            rows.append(r)
            print(f"  {name} {n}x{i}->{o}, {t} thread(s): " + ', '.join(f'{k} {r[k]:.3f} ms' for k in ['fp32', 'bf16', 'int_mm', *int8_candidates()]), flush=True)
    torch.set_num_threads(old)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--presets', nargs='+', default=['tiny', 'base'])
    ap.add_argument('--batch', type=int, help='throughput batch (default: tiny 32, base 8)')
    ap.add_argument('--repeats', type=int, help='timed calls (default: tiny 20, base 5)')
    ap.add_argument('--threads', type=int, help="intra-op threads for PyTorch and ONNX Runtime alike (default: PyTorch's own)")
    ap.add_argument('--no-onnx', action='store_true', help='skip the ONNX Runtime rows (and the export)')
    ap.add_argument('--no-kernels', action='store_true', help='skip the linear-layer micro-benchmark')
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    if a.threads: torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    ort_version = None
    if not a.no_onnx:
        import onnxruntime; ort_version = onnxruntime.__version__
    shapes = [('tiny ffn in', (64, 64, 256)), ('tiny ffn out', (64, 256, 64)), ('base ffn in', (400, 768, 3072)), ('base ffn out', (400, 3072, 768))]
    kernels = [] if a.no_kernels else kernel_rows(shapes, [1, 2])
    rows, guard, exports = [], {}, {}
    for preset in a.presets:
        torch.manual_seed(0)
        model, proc = C.build(preset); model.eval()
        B, n = a.batch or (8 if preset == 'base' else 32), a.repeats or (5 if preset == 'base' else 20)
        one, _ = C.batch(proc, preset, 1); many, _ = C.batch(proc, preset, B)
        tmp = Path(tempfile.mkdtemp(prefix='mmsent-bench-'))
        try:
            if not a.no_onnx:   # first: the export (a child process) is over before anything is timed
                print(f"  {preset}: exporting to ONNX (model.onnx, model.int8.onnx)...", flush=True)
                d, s = export(model, proc, preset, tmp)
                exports[preset] = dict(seconds=s, mib={f.name: f.stat().st_size/2**20 for f in sorted(d.glob('*.onnx'))})
                print(f"  {preset}: saved and exported in {s:.0f} s (" + ', '.join(f'{k} {v:.0f} MiB' for k, v in exports[preset]['mib'].items()) + ')', flush=True)
            ref = ref_logits = None
            def torch_rows():
                for name, m, prec in variants(model):
                    if name == 'int8': guard[preset] = m.int8_speed
                    def fwd(x, m=m, prec=prec):
                        with torch.inference_mode(), C.autocast(prec): return m(**x, return_dict=True).logits
                    yield name, 'torch', fwd, (m.int8_speed['kernel'] if name == 'int8' else None)
            def onnx_rows():
                for name, be in ([] if a.no_onnx else ort_variants(tmp/'export', threads)):
                    yield name, 'onnxruntime', (lambda x, be=be: torch.from_numpy(be(x)['logits'])), None
            for rows_of in (torch_rows, onnx_rows):
                for name, runtime, fwd, kernel in rows_of():
                    lat = C.median_time(lambda: fwd(one), n)
                    thr = B/C.median_time(lambda: fwd(many), max(3, n//4))
                    logits = fwd(many).float()
                    pred = logits.argmax(-1)
                    if ref is None: ref, ref_logits = pred, logits
                    rows.append(dict(preset=preset, variant=name, runtime=runtime, ort_version=ort_version if runtime == 'onnxruntime' else None, threads=threads,
                                     kernel=kernel, latency_ms=1000*lat, samples_per_s=thr, batch=B, agree_fp32=(pred == ref).float().mean().item(),
                                     max_abs_diff_fp32=(logits - ref_logits).abs().max().item()))
                    print(f"  {preset} {name}: {1000*lat:.1f} ms at batch 1, {thr:.1f} samples/s at batch {B}, max |logits - fp32| {rows[-1]['max_abs_diff_fp32']:.1e}", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for r in rows:
        f = next(x for x in rows if x['preset'] == r['preset'] and x['variant'] == 'fp32')
        r['speedup_latency'], r['speedup_throughput'] = f['latency_ms']/r['latency_ms'], r['samples_per_s']/f['samples_per_s']
    print(f"\nmachine: {C.machine()}" + (f", onnxruntime {ort_version}" if ort_version else ''))
    print(C.table(rows, [('preset', 'preset', 's'), ('variant', 'variant', 's'), ('latency_ms', 'ms (batch 1)', '.1f'), ('speedup_latency', 'x fp32', '.2f'),
                         ('kernel', 'kernel', 's'), ('batch', 'batch', 'd'), ('samples_per_s', 'samples/s', '.1f'), ('speedup_throughput', 'x fp32', '.2f'),
                         ('agree_fp32', 'agrees', '.0%'), ('max_abs_diff_fp32', 'max |diff|', '.1e'), ('threads', 'threads', 'd')]))
    for p, g in guard.items():
        print(f"int8 guard, {p}: fp32 {g['ms']['fp32']} ms vs " + ', '.join(f"{k} {v} ms" for k, v in g['ms'].items() if k != 'fp32') +
              f" over the linear layers ({g['cpu_capability']}, {g['threads']} threads): quantize_int8 would {'quantize' if g['ms'][g['kernel']] < g['ms']['fp32'] else 'keep fp32'}")
    C.write('inference', dict(rows=rows, kernels=kernels, int8_guard=guard, threads=threads, onnxruntime=ort_version, onnx_export=exports,
                              load_average=[load0, os.getloadavg()[0]]))

if __name__ == '__main__':
    main()
