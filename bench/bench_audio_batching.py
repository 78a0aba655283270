"""Audio batching benchmark: the base preset's Wav2Vec2 (group norm) on a batch of clips of different lengths, three ways.

    python bench/bench_audio_batching.py
    python bench/bench_audio_batching.py --batch 8 --repeats 4

- `padded, unmasked`: the Hugging Face recipe for group-norm checkpoints: the zero-padded batch goes through the encoder
  without a mask; pooling uses the real frames. A clip's logits depend on its neighbours.
- `mmsent`: what `AudioSentimentModel.encode` does: one batched call in which the first convolution's group norm takes
  each clip's statistics over its own real frames, frames past a clip's end are zeroed, and the projection and the
  transformer run with a frame mask. A clip's logits are the ones it gets alone.
- `fixed 10 s`: every clip zero-padded to `max_audio_seconds` (as MMML, the multimodal multi-loss fusion network of
  Wu et al., 2024, does), then `padded, unmasked`: the same for a clip whatever its neighbours, but every clip pays for
  10 s, and its result differs from the clip's own unpadded one.

The encoder is built from `base_config('audio')` (facebook/wav2vec2-base-960h's architecture, random weights: time does not
depend on the weights), in eval mode under `torch.inference_mode`, fp32. Clip lengths are drawn uniformly from 1-10 s
(seeded). Each way is timed `--repeats` times, the ways taking turns, and the fastest call is reported (the machine
may be shared; the median is kept too). For each way, the batch's logits are compared with each clip's logits on its
own (the clip unpadded, or for `fixed 10 s` the clip padded to 10 s), and with the clip's unpadded logits.
Writes bench/results/audio_batching.json; asserts nothing.
"""
import argparse, os, statistics, time

import numpy as np
import torch

import common as C
from mmsent.encoders import AudioSentimentModel, ProcessorConfig, base_config, masked_mean


def batched(model, x, mask):
    "The Hugging Face recipe: padding through the encoder unmasked, pooling over real frames."
    h = model.encoder(x).last_hidden_state
    return model.classifier(masked_mean(h, model.frame_mask(mask, h.shape[1])))


def exact(model, x, mask):
    "mmsent's own path (`AudioSentimentModel.encode`)."
    return model(x, mask).logits


def fixed(model, x, mask, n:int):
    "Every clip padded to n samples, then the Hugging Face recipe."
    xp, mp = x.new_zeros(x.shape[0], n), mask.new_zeros(x.shape[0], n)
    xp[:, :x.shape[1]], mp[:, :x.shape[1]] = x, mask
    return batched(model, xp, mp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--repeats', type=int, default=4, help='timed calls of each way, taking turns (after one warm-up call each)')
    a = ap.parse_args()
    torch.manual_seed(0)
    model = AudioSentimentModel(config=base_config('audio')).eval()
    sr, max_s = ProcessorConfig().sampling_rate, ProcessorConfig().max_audio_seconds
    rng = np.random.default_rng(0)
    lens = (rng.uniform(1, max_s, a.batch)*sr).astype(int)
    x, mask = torch.zeros(a.batch, lens.max()), torch.zeros(a.batch, lens.max(), dtype=torch.long)
    for i, n in enumerate(lens): x[i, :n] = torch.from_numpy(rng.normal(0, 1, n).astype(np.float32)); mask[i, :n] = 1
    N = int(max_s*sr)
    ways = {'padded, unmasked': (lambda: batched(model, x, mask), lambda i: batched(model, x[i:i+1, :lens[i]], mask[i:i+1, :lens[i]])),
            'mmsent': (lambda: exact(model, x, mask), lambda i: exact(model, x[i:i+1, :lens[i]], mask[i:i+1, :lens[i]])),
            'fixed 10 s': (lambda: fixed(model, x, mask, N), lambda i: fixed(model, x[i:i+1, :lens[i]], mask[i:i+1, :lens[i]], N))}
    rows, alone_cache, times = [], {}, {name: [] for name in ways}
    load0 = os.getloadavg()[0]
    with torch.inference_mode():
        for name, (run, _) in ways.items(): run()   # warm-up
        for _ in range(a.repeats):                  # the ways take turns, so that other load on the machine hits them alike
            for name, (run, _) in ways.items():
                t0 = time.perf_counter(); run(); times[name].append(time.perf_counter() - t0)
        for name, (run, alone) in ways.items():
            t = min(times[name])   # the machine may be shared: the fastest call is the one least disturbed
            out = run()
            key = 'fixed' if name == 'fixed 10 s' else 'own'   # the Hugging Face recipe and mmsent's have the same reference: the clip alone, unpadded
            if key not in alone_cache: alone_cache[key] = torch.cat([alone(i) for i in range(a.batch)])
            if 'own' not in alone_cache: alone_cache['own'] = torch.cat([ways['mmsent'][1](i) for i in range(a.batch)])
            dev = (out - alone_cache[key]).abs().max(-1).values
            rows.append(dict(way=name, batch_s=t, median_s=statistics.median(times[name]), times_s=times[name], clips_per_s=a.batch/t,
                             max_dev=dev.max().item(), shortest_dev=dev[int(lens.argmin())].item(),
                             vs_unpadded=(out - alone_cache['own']).abs().max().item()))
            print(f"  {name}: {t:.2f} s a batch ({', '.join(f'{x:.2f}' for x in times[name])}), {a.batch/t:.2f} clips/s, "
                  f"largest logit difference alone vs batched {dev.max().item():.2g}", flush=True)
    for r in rows: r['x_batched'] = rows[0]['batch_s']/r['batch_s']
    audio = dict(batch=a.batch, clip_seconds=[round(float(n)/sr, 2) for n in lens], real_seconds=round(float(lens.sum())/sr, 2),
                 padded_seconds=round(a.batch*float(lens.max())/sr, 2), fixed_seconds=a.batch*max_s)
    print(f"\nmachine: {C.machine()}\nclips: {audio}")
    print(C.table(rows, [('way', 'way', 's'), ('batch_s', 's/batch', '.2f'), ('clips_per_s', 'clips/s', '.2f'), ('x_batched', 'x batched', '.2f'),
                         ('max_dev', 'max |alone-batch|', '.1e'), ('shortest_dev', 'shortest clip', '.1e'),
                         ('vs_unpadded', 'max |unpadded-batch|', '.1e')]))
    C.write('audio_batching', dict(model="AudioSentimentModel(config=base_config('audio')), random weights, fp32, eval", audio=audio,
                                   repeats=a.repeats, load_average=[round(load0, 2), round(os.getloadavg()[0], 2)], rows=rows))


if __name__ == '__main__':
    main()
