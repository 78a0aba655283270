"""Inference benchmark: latency at batch 1 and throughput at a larger batch, fp32 vs bf16 vs dynamic int8, tiny and base presets.

    python bench/bench_inference.py
    python bench/bench_inference.py --presets tiny --batch 32

The model is in eval mode under `torch.inference_mode`; inputs are made by the real processor once (32 tokens,
2 s of audio, one image per sample), so the figures are the model's, not decoding's. bf16 is CPU autocast;
int8 is `mmsent.compress.quantize_int8` (int8 weights per channel, activations quantized per row at run time, int8 matmuls).
The fused prediction of each variant is compared with fp32's on the timed batch. Writes
bench/results/inference.json; asserts nothing.
"""
import argparse

import torch

import common as C


def variants(model):
    from mmsent.compress import quantize_int8
    yield 'fp32', model, 'fp32'
    yield 'bf16', model, 'bf16'
    yield "int8", quantize_int8(model), "fp32"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--presets', nargs='+', default=['tiny', 'base'])
    ap.add_argument('--batch', type=int, help='throughput batch (default: tiny 32, base 8)')
    ap.add_argument('--repeats', type=int, help='timed calls (default: tiny 20, base 5)')
    a = ap.parse_args()
    rows = []
    for preset in a.presets:
        torch.manual_seed(0)
        model, proc = C.build(preset); model.eval()
        B, n = a.batch or (8 if preset == 'base' else 32), a.repeats or (5 if preset == 'base' else 20)
        one, _ = C.batch(proc, preset, 1); many, _ = C.batch(proc, preset, B)
        ref = None
        for name, m, prec in variants(model):
            def fwd(x): 
                with torch.inference_mode(), C.autocast(prec): return m(**x, return_dict=True).logits
            lat = C.median_time(lambda: fwd(one), n)
            thr = B/C.median_time(lambda: fwd(many), max(3, n//4))
            pred = fwd(many).float().argmax(-1)
            ref = pred if ref is None else ref
            rows.append(dict(preset=preset, variant=name, latency_ms=1000*lat, samples_per_s=thr, batch=B, agree_fp32=(pred == ref).float().mean().item()))
            print(f"  {preset} {name}: {1000*lat:.1f} ms at batch 1, {thr:.1f} samples/s at batch {B}", flush=True)
    for r in rows:
        f = next(x for x in rows if x['preset'] == r['preset'] and x['variant'] == 'fp32')
        r['speedup_latency'], r['speedup_throughput'] = f['latency_ms']/r['latency_ms'], r['samples_per_s']/f['samples_per_s']
    print(f"\nmachine: {C.machine()}")
    print(C.table(rows, [('preset', 'preset', 's'), ('variant', 'variant', 's'), ('latency_ms', 'ms (batch 1)', '.1f'), ('speedup_latency', 'x fp32', '.2f'),
                         ('batch', 'batch', 'd'), ('samples_per_s', 'samples/s', '.1f'), ('speedup_throughput', 'x fp32', '.2f'), ('agree_fp32', 'agrees', '.0%')]))
    C.write('inference', dict(rows=rows))


if __name__ == '__main__':
    main()
