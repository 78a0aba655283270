"""Feature cache benchmark: training with frozen encoders, features cached (safetensors) vs computed every epoch.

    python bench/bench_cache.py                     # tiny (600 samples) and base (random init, 80 samples), 3 epochs each way
    python bench/bench_cache.py --presets tiny --n 1500 --epochs 4

Both runs are `mmsent.train.train` with `freeze=True` (encoders frozen for the whole run), one with
`feature_cache=True` (the default: features computed once, before the first epoch, into a fresh cache folder)
and one with `feature_cache=False` (files decoded and encoders run every epoch). Reported: the training time of
each epoch after the first (from the history JSON), the one-off cost of building the cache, and the ratio. The
goal is for the ratio; with the tiny preset a cached epoch is little more than the fusion layer's own
training steps, so its ratio is bounded by how cheap the tiny encoders are; with base encoders it is not.
Writes bench/results/cache.json; asserts nothing.
"""
import argparse, os, statistics, tempfile, time
from pathlib import Path

import common as C

GOAL = 20.0


def run(tmp:Path, cache:bool, n:int, epochs:int, preset:str)->dict:
    from mmsent.train import TrainConfig, train
    out = tmp/('cached' if cache else 'uncached')
    t0 = time.perf_counter()
    res = train(TrainConfig(preset=preset, random_init=preset != 'tiny', synth_n=n, epochs=epochs, freeze=True, feature_cache=cache,
                            output_dir=str(out/'models'), log_dir=str(out/'logs'), progress=False, seed=0))
    wall = time.perf_counter() - t0
    ep = [e['seconds'] for e in res['history']]
    return dict(feature_cache=cache, epoch_s=ep, later_epoch_s=statistics.median(ep[1:]), wall_s=wall, val_accuracy=res['history'][-1]['val_accuracy'])


def cache_build_time(tmp:Path, n:int, preset:str)->float:
    "Seconds to compute the features of the train and val splits into an empty cache, as `train` does before its first epoch."
    from mmsent.cache import FeatureCache
    from mmsent.datasets import load_records
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.synth import SynthConfig, synth_dataset_dir
    from mmsent.train import TrainConfig
    cfg = TrainConfig(preset=preset, random_init=preset != 'tiny', synth_n=n, freeze=True)
    fc = FeatureCache(tmp/'cache-timed', EndToEndMultiModalModel(cfg.model_config()), cfg.processor())
    recs = [r for s in ('train', 'val') for r in load_records('synth', synth_dataset_dir(SynthConfig(n=n, seed=0)), s)]
    t0 = time.perf_counter(); fc.build(recs, batch_size=cfg.batch_size, progress=False)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--presets', nargs='+', default=['tiny', 'base'], help='tiny, base (random init)')
    ap.add_argument('--n', type=int, nargs='+', default=[600, 80], help='synthetic samples, one per preset')
    ap.add_argument('--epochs', type=int, default=3)
    a = ap.parse_args()
    rows, goals = [], {}
    for preset, n in zip(a.presets, a.n):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            os.environ['MMSENT_CACHE'] = str(tmp/'cache')   # a cold cache: the cached run pays for computing the features
            from mmsent.synth import SynthConfig, synth_dataset_dir
            synth_dataset_dir(SynthConfig(n=n, seed=0))   # the data, generated before anything is timed
            un, ca = run(tmp, False, n, a.epochs, preset), run(tmp, True, n, a.epochs, preset)
            build_s = cache_build_time(tmp, n, preset)
        ratio = un['later_epoch_s']/ca['later_epoch_s']
        for r in (un, ca): r.update(preset=preset, n=n)
        ca.update(cache_build_s=build_s, speedup=ratio)
        rows += [un, ca]
        goals[f'cached_epoch_speedup_{preset}'] = dict(value=ratio, goal=GOAL)
        print(f"  {preset}: uncached {un['later_epoch_s']:.2f} s/epoch, cached {ca['later_epoch_s']:.3f} s/epoch ({ratio:.1f}x); cache built in {build_s:.1f} s", flush=True)
    print(f"\nmachine: {C.machine()}")
    print(C.table(rows, [('preset', 'preset', 's'), ('n', 'samples', 'd'), ('feature_cache', 'cache', ''), ('later_epoch_s', 'epoch s (after 1st)', '.3f'),
                         ('speedup', 'x uncached', '.1f'), ('cache_build_s', 'cache build s', '.1f'), ('wall_s', 'run s', '.1f')]))
    for k, g in goals.items():
        print(f"goal: cached epochs >= {GOAL:.0f}x faster than uncached ({k.split('_')[-1]}): {g['value']:.1f}x" + ('' if g['value'] >= GOAL else f", short by {GOAL - g['value']:.1f}x"))
    C.write('cache', dict(epochs=a.epochs, runs=rows, goals=goals))


if __name__ == '__main__':
    main()
