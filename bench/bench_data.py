"""Data pipeline benchmark: samples/s the DataLoader delivers (decode, resample, preprocess, collate) against what training consumes.

    python bench/bench_data.py                 # tiny preset, synthetic WAV+PNG and the same samples as mp4, 0/1/2 workers
    python bench/bench_data.py --n 600 --workers 0 2

The loader is the one `mmsent.train` builds for raw files (`MultiModalDataset` + `MultiModalCollator` with the
preset's processor, batch 16, persistent workers), timed as the median of three passes over the training split after a first one. Training
consumption is the tiny preset's full training step (forward, loss, backward, AdamW) on the same collated
batches, in the same process. The mp4 variant writes each sample's audio and image as an H.264/AAC clip (its
1 s of frames at 10 fps) and reads it through PyAV. Writes bench/results/data.json; asserts nothing.
"""
import argparse, csv, statistics, tempfile, time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import common as C
from mmsent.data import load_audio, write_test_mp4
from mmsent.datasets import MultiModalCollator, MultiModalDataset, load_records
from mmsent.synth import SynthConfig, synth_dataset_dir

GOAL = 3.0


def to_mp4(records, folder:Path)->list:
    "The same samples as mp4 clips (audio track + the image as 1 s of frames), as records of a manifest."
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in records:
        if r.audio_path is None or r.image_path is None: continue
        im = np.asarray(Image.open(r.image_path).convert('RGB'))
        write_test_mp4(folder/f'{r.id}.mp4', load_audio(r.audio_path).numpy(), frames=[im]*10, fps=10)
        rows.append(dict(id=r.id, split='train', label=('negative', 'neutral', 'positive')[r.label], text=r.text or '', video_path=f'{r.id}.mp4'))
    with open(folder/'manifest.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0])); w.writeheader(); w.writerows(rows)
    return load_records('manifest', folder/'manifest.csv', 'train')


def loader_rate(records, proc, workers:int, B:int, passes:int=3)->float:
    "Samples/s, the median over `passes` passes after a first one (workers already started, as in training with persistent workers)."
    dl = torch.utils.data.DataLoader(MultiModalDataset(records), batch_size=B, shuffle=True, num_workers=workers,
                                     collate_fn=MultiModalCollator(proc), persistent_workers=workers > 0)
    for _ in dl: pass
    rates = []
    for _ in range(passes):
        t0, n = time.perf_counter(), 0
        for b in dl: n += len(b['labels'])
        rates.append(n/(time.perf_counter() - t0))
    return statistics.median(rates)


def train_rate(records, proc, B:int)->float:
    "Samples/s of tiny training steps on collated batches of these records."
    from bench_train_step import step_fn
    torch.manual_seed(0)
    model, _ = C.build('tiny'); model.train(); opt = C.optimizer(model)
    batches = list(torch.utils.data.DataLoader(MultiModalDataset(records[:8*B]), batch_size=B, collate_fn=MultiModalCollator(proc)))
    step_fn(model, opt, {k: v for k, v in batches[0].items() if k not in ('labels', 'meta')}, batches[0]['labels'], 'fp32')
    t0, n = time.perf_counter(), 0
    for b in batches:
        step_fn(model, opt, {k: v for k, v in b.items() if k not in ('labels', 'meta')}, b['labels'], 'fp32'); n += len(b['labels'])
    return n/(time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=500, help='size of the synthetic set (about 70%% of it is the training split)')
    ap.add_argument('--workers', nargs='+', type=int, default=[0, 1, 2])
    ap.add_argument('--batch_size', type=int, default=16)
    a = ap.parse_args()
    recs = load_records('synth', synth_dataset_dir(SynthConfig(n=a.n, seed=0)), 'train')
    _, proc = C.build('tiny')
    with tempfile.TemporaryDirectory() as tmp:
        sets = {'wav+png': recs, 'mp4': to_mp4(recs, Path(tmp)/'mp4')}
        rows = []   # loaders first: their workers fork from a process that has not trained yet
        for name, rs in sets.items():
            for w in a.workers:
                r = loader_rate(rs, proc, w, a.batch_size)
                rows.append(dict(inputs=name, workers=w, samples_per_s=r)); print(f"  {name}, {w} workers: {r:.0f} samples/s", flush=True)
        consume = train_rate(recs, proc, a.batch_size)
        for r in rows: r['ratio'] = r['samples_per_s']/consume
        print(f"machine: {C.machine()}\ntraining consumes {consume:.0f} samples/s (tiny preset, batch {a.batch_size}, fp32)")
    print('\n' + C.table(rows, [('inputs', 'inputs', 's'), ('workers', 'workers', 'd'), ('samples_per_s', 'samples/s', '.0f'), ('ratio', 'x training', '.2f')]))
    goal = next((r for r in rows if r['inputs'] == 'wav+png' and r['workers'] == 2), None)
    goals = {}
    if goal:
        goals['loader_over_training_2_workers'] = dict(value=goal['ratio'], goal=GOAL)
        print(f"goal: the loader delivers >= {GOAL:.0f}x what training consumes with 2 workers (wav+png): {goal['ratio']:.2f}x"
              + ('' if goal['ratio'] >= GOAL else f", short by {GOAL - goal['ratio']:.2f}x"))
    C.write('data', dict(training_samples_per_s=consume, batch_size=a.batch_size, n=len(recs), loaders=rows, goals=goals))


if __name__ == '__main__':
    main()
