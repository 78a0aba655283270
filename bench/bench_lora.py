"""LoRA against full fine-tuning: trainable parameters, optimizer state and peak training memory of the base preset.

    python bench/bench_lora.py                        # batch 8: full fine-tuning, LoRA r=8 and r=16, each also with gradient checkpointing, in fp32 and bf16
    python bench/bench_lora.py --batch 4 --ranks 8 --precisions fp32

Each setting runs in a fresh process: the base preset built from its configs (random weights: memory does not depend
on them), AdamW as `mmsent_train` builds it (LoRA adapters at the new layers' rate), three fp32 training steps on a batch
of 2 s clips, 32-token texts and 224x224 images, in fp32 and under bf16 autocast (bf16 only where the CPU or GPU runs it natively:
emulated bf16 is hundreds of times slower). In bf16, LoRA runs hold the encoders' frozen linear weights in bf16, as `mmsent_train`
does (`EndToEndMultiModalModel.frozen_weights_to`). Figures: trainable parameters; the optimizer's state (AdamW's two
moments) after the steps; the peak resident memory of the process over the steps (weights, gradients, optimizer state and
activations: what the machine must hold), and that peak above the process before the first step (what training adds to a
loaded model). Memory on the CPU is the process's RSS high-water mark (Linux), in MiB. The goal compares the peak above the
process with its libraries imported (the model, its training state and the activations), against full fine-tuning without
gradient checkpointing, in the same precision: what a LoRA run replaces.
"""
import argparse, json

import common as C
from mmsent.core import native_bf16

GOAL = 3.0   # LoRA's peak training memory at most a third of full fine-tuning's


def run_child(rank:int|None, grad_ckpt:bool, B:int, precision:str='fp32', steps:int=3)->dict:
    "One setting in a fresh process: its parameter counts, optimizer state and memory."
    out = C.in_child(f"""
import json, torch, common as C
from mmsent.model import EndToEndMultiModalModel, ModelConfig
from mmsent.encoders import base_config, MultiModalProcessor
imports = C.status_mib('VmRSS'); torch.manual_seed(0)
lora = dict(r={rank}) if {rank!r} is not None else None
cfg = ModelConfig(preset='base', encoder_configs={{m: base_config(m).to_dict() for m in ('text', 'audio', 'visual')}},
                  gradient_checkpointing={grad_ckpt}, lora=lora)
m = EndToEndMultiModalModel(cfg).train(); p = MultiModalProcessor.from_pretrained('tiny')
if {precision!r} == 'bf16': m.frozen_weights_to(torch.bfloat16)   # as mmsent_train does for LoRA in bf16 (no-op without LoRA)
o = C.optimizer(m); i, y = C.batch(p, 'base', {B})
total, trainable = sum(q.numel() for q in m.parameters()), sum(q.numel() for q in m.parameters() if q.requires_grad)
C.reset_peak_rss(); before = C.status_mib('VmRSS')
for _ in range({steps}):
    o.zero_grad(set_to_none=True)
    with C.autocast({precision!r}): loss = m(**i, labels=y, return_dict=True).loss
    loss.backward(); o.step()
state = sum(t.numel()*t.element_size() for s in o.state.values() for t in s.values() if torch.is_tensor(t))
print(json.dumps(dict(total=total, trainable=trainable, optimizer_state_mib=state/2**20, rss_imports_mib=imports, rss_before_mib=before,
                      peak_rss_mib=C.status_mib('VmHWM'))))""")
    r = json.loads(out.strip().splitlines()[-1])
    return dict(setting='full fine-tuning' if rank is None else f'LoRA r={rank}', lora_r=rank, grad_checkpointing=grad_ckpt, precision=precision, batch=B, **r,
                model_peak_mib=r['peak_rss_mib'] - r['rss_imports_mib'], added_mib=r['peak_rss_mib'] - r['rss_before_mib'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--ranks', nargs='+', type=int, default=[8, 16])
    ap.add_argument('--precisions', nargs='+', choices=['fp32', 'bf16'], default=['fp32', 'bf16'], help='bf16 runs only where it is native')
    ap.add_argument('--steps', type=int, default=3, help='training steps per setting')
    a = ap.parse_args()
    precisions = [p for p in a.precisions if p == 'fp32' or native_bf16('cpu')]
    if precisions != a.precisions: print(f"bf16 skipped: this CPU has no native bf16 ({C.machine()['cpu_capability']})")
    rows = []
    for prec in precisions:
        for ck in (False, True):
            for rank in (None, *a.ranks):
                rows.append(run_child(rank, ck, a.batch, prec, a.steps))
                r = rows[-1]
                print(f"  {r['setting']:<16} {prec} checkpointing={ck}: trainable {r['trainable']/1e6:.2f}M of {r['total']/1e6:.1f}M, "
                      f"optimizer state {r['optimizer_state_mib']:.0f} MiB, peak RSS {r['peak_rss_mib']:.0f} MiB ({r['model_peak_mib']:.0f} above the imported libraries, "
                      f"{r['added_mib']:.0f} above the loaded model)", flush=True)
    print('\n' + C.table(rows, [('setting', 'setting', 's'), ('precision', 'precision', 's'), ('grad_checkpointing', 'ckpt', ''), ('trainable', 'trainable', ',d'),
                                ('optimizer_state_mib', 'optim MiB', '.0f'), ('peak_rss_mib', 'peak MiB', '.0f'), ('model_peak_mib', 'model MiB', '.0f'),
                                ('added_mib', 'added MiB', '.0f')]))
    goals = {}
    for r in rows:
        if r['lora_r'] is None: continue
        full = next(x for x in rows if x['lora_r'] is None and not x['grad_checkpointing'] and x['precision'] == r['precision'])   # the usual run in that precision
        same = next(x for x in rows if x['lora_r'] is None and x['grad_checkpointing'] == r['grad_checkpointing'] and x['precision'] == r['precision'])
        key = f"lora_r{r['lora_r']}{'_ckpt' if r['grad_checkpointing'] else ''}_{r['precision']}_memory_cut"
        goals[key] = dict(value=full['model_peak_mib']/r['model_peak_mib'], total_cut=full['peak_rss_mib']/r['peak_rss_mib'],
                          added_cut=full['added_mib']/r['added_mib'], same_checkpointing_cut=same['model_peak_mib']/r['model_peak_mib'],
                          goal=GOAL, batch=a.batch, precision=r['precision'])
        g = goals[key]
        print(f"goal: LoRA r={r['lora_r']} in {r['precision']}{' with checkpointing' if r['grad_checkpointing'] else ''} needs {GOAL:.0f}x less memory than full "
              f"fine-tuning in {r['precision']} (peak above the imported libraries): {g['value']:.2f}x (whole process {g['total_cut']:.2f}x, "
              f"above the loaded model {g['added_cut']:.2f}x; against full fine-tuning with the same checkpointing {g['same_checkpointing_cut']:.2f}x)")
    C.write('lora', dict(rows=rows, goals=goals))


if __name__ == '__main__': main()
