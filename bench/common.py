"Shared pieces of the benchmarks: the machine's matmul peak, model builders, synthetic batches, timing and memory probes, JSON output."
import json, os, platform, statistics, subprocess, sys, time
from pathlib import Path

import numpy as np
import torch

from mmsent.encoders import MultiModalProcessor, base_config
from mmsent.model import EndToEndMultiModalModel, ModelConfig

os.environ.setdefault('HF_HUB_OFFLINE', '1')
RESULTS = Path(__file__).resolve().parent/'results'


def matmul_peak(dtype, device:str='cpu', seconds:float=1.0)->float:
    "Dense square-matmul throughput in GFLOP/s, the best over a few sizes: the machine's limit for `dtype`."
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    best = 0.0
    for n in ((4096, 8192, 16384) if device == 'cuda' else (1024, 2048, 4096)):
        a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
        for _ in range(2): a @ b
        sync(); k, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds: a @ b; k += 1; sync()
        best = max(best, 2*n**3*k/(time.perf_counter() - t0)/1e9)
    return best


# Dense (not 2:4 sparse) bf16 tensor-core peaks from NVIDIA's datasheets, in TFLOP/s: the SXM boards; the H100 PCIe card is slower.
DATASHEET_BF16_TFLOPS = {'H100 PCIe': 756.0, 'H100': 989.4, 'H200': 989.4, 'A100': 312.0, 'L4': 121.0, 'L40S': 362.0}


def datasheet_bf16_gflops(device:str='cuda')->float|None:
    "The datasheet's dense bf16 peak of this CUDA GPU in GFLOP/s (the first name in `DATASHEET_BF16_TFLOPS` found in the device's name), else None."
    if device != 'cuda' or not torch.cuda.is_available(): return None
    name = torch.cuda.get_device_name(0)
    return next((v*1e3 for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), None)


def build(preset:str, grad_ckpt:bool=False):
    "(model, processor) of a preset; base from its configs (random init: FLOPs and time do not depend on the weights)."
    if preset == 'base':
        cfg = ModelConfig(preset='base', encoder_configs={m: base_config(m).to_dict() for m in ('text', 'audio', 'visual')},
                          gradient_checkpointing=grad_ckpt)
        return EndToEndMultiModalModel(cfg), MultiModalProcessor.from_pretrained('tiny')  # the tiny tokenizer's ids are valid for RoBERTa-base's vocabulary
    return EndToEndMultiModalModel.from_preset('tiny', gradient_checkpointing=grad_ckpt), MultiModalProcessor.from_pretrained('tiny')


def batch(proc, preset:str, B:int, seconds:float=2.0, tokens:int=32):
    "Model inputs for B samples (32 tokens, 2 s of audio, one image) built by the real processor, and labels."
    rng = np.random.default_rng(0)
    from PIL import Image
    text = [' '.join(['word'] * tokens)] * B
    audio = [rng.normal(0, 0.1, int(16_000*seconds)).astype(np.float32) for _ in range(B)]
    side = 224 if preset == 'base' else 64
    image = [Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)) for _ in range(B)]
    inputs = dict(proc(text=text, audio=audio, image=image))
    if preset == 'base':   # the tiny processor resizes to 64 px; the base ViT takes 224 px
        inputs['visual_inputs'] = torch.randn(B, 3, 224, 224)
    return inputs, torch.arange(B) % 3


def optimizer(model, device='cpu'):
    "The optimizer `mmsent.train` builds: AdamW over the model's parameter groups (fused on cpu and cuda)."
    from mmsent.train import make_optimizer
    return make_optimizer(model, learning_rate=1e-4, pretrained_lr_ratio=0.1, weight_decay=0.01, device=device)


def autocast(precision:str, device:str='cpu'):
    return torch.autocast(device, dtype=torch.bfloat16, enabled=precision == 'bf16')


def median_time(fn, n:int, warmup:int=1)->float:
    "Median wall time of `fn()` over n calls, after `warmup` calls."
    for _ in range(warmup): fn()
    t = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); t.append(time.perf_counter() - t0)
    return statistics.median(t)


def status_mib(key:str)->float:
    "A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MiB (Linux)."
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(key + ':'): return int(line.split()[1])/1024
    raise KeyError(key)


def reset_peak_rss():
    "Reset this process's RSS high-water mark (Linux: /proc/self/clear_refs)."
    Path('/proc/self/clear_refs').write_text('5')


def in_child(code:str)->str:
    "Run Python code in a fresh process with bench/ importable; its stdout."
    r = subprocess.run([sys.executable, '-c', f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n" + code],
                       capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE='1'))
    if r.returncode: raise RuntimeError(r.stderr[-3000:])
    return r.stdout


def cpu_model()->str:
    "The CPU's model name (Linux: /proc/cpuinfo), else what `platform` says."
    try: return next(l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or platform.machine()


def machine()->dict:
    "The machine a result comes from: CPU model, PyTorch's CPU capability and the CPU's native bf16 instructions, cores, threads, torch, GPU."
    from mmsent.core import cpu_bf16_support
    return dict(cpu=platform.processor() or platform.machine(), cpu_model=cpu_model(), cpu_capability=torch.backends.cpu.get_cpu_capability(), cpu_bf16=cpu_bf16_support(),
                cores=os.cpu_count(), threads=torch.get_num_threads(), torch=torch.__version__,
                cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


def extract_package(ref:str, dest)->Path:
    "Write commit `ref`'s `mmsent/` package into folder `dest` (for a before/after run in one process tree); returns `dest`."
    root = Path(__file__).resolve().parent.parent
    subprocess.run(f"git -C {root} archive {ref} mmsent | tar -x -C {dest}", shell=True, check=True)
    return Path(dest)


def head_name()->str:
    "This checkout's short commit, with ' with changes' when mmsent/ differs from it."
    root = Path(__file__).resolve().parent.parent
    head = subprocess.run(['git', '-C', str(root), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip() or 'this checkout'
    dirty = subprocess.run(['git', '-C', str(root), 'status', '--porcelain', 'mmsent'], capture_output=True, text=True).stdout.strip()
    return head + (' with changes' if dirty else '')


def write(name:str, obj:dict, threads:int|None=None)->Path:
    "Write a benchmark's results as bench/results/NAME.json (with the machine and the command line; `threads`: the measuring processes' threads, where not this process's)."
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS/f'{name}.json'
    script = os.path.relpath(os.path.abspath(sys.argv[0]), Path(__file__).resolve().parent.parent)   # relative to the repository
    p.write_text(json.dumps(dict(machine=dict(machine(), **({'threads': threads} if threads else {})), command=' '.join(['python', script, *sys.argv[1:]]), date=time.strftime('%Y-%m-%d'), **obj), indent=2))
    print(f"\nwrote {p}")
    return p


def table(rows:list[dict], cols:list[tuple])->str:
    "A plain-text table: cols are (key, header, format)."
    head = '  '.join(f'{h:>{max(len(h), 8)}s}' for _, h, _ in cols)
    lines = [head]
    for r in rows:
        lines.append('  '.join(f'{format(r[k], f) if r.get(k) is not None else "-":>{max(len(h), 8)}s}' for k, h, f in cols))
    return '\n'.join(lines)
