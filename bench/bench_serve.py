"""HTTP serving benchmark: `mmsent_serve` under concurrent load, dynamic batching on vs off.

    python bench/bench_serve.py                      # tiny preset, 200 requests or 15 s a level: about 3 minutes on 2 cores
    python bench/bench_serve.py --presets tiny base --requests 100 --max_seconds 60

For each preset the model is saved to a temporary folder and served by `mmsent.serve.running_server` (the real
`mmsent_serve` command, on 127.0.0.1, in its own process group) twice: with dynamic batching
(`--max_batch_size 32 --batch_timeout 0.01`) and without (`--max_batch_size 1`). Against each server a load
generator on loopback keeps 1, 8 and 32 requests in flight, after a warm-up that is not timed: wrk (Debian's `wrk`, one
thread, `--max_seconds` a level) where it is installed, because on 2 cores a Python client takes about 1.7 ms of CPU a
request that the server needs; otherwise an asyncio httpx client, until it has sent `--requests` or `--max_seconds`
have passed (`--client` chooses). Every request is the same realistic
mixed payload: JSON with a sentence, a 1 s 16 kHz mono WAV and a 64x64 RGB PNG, both base64-encoded.

Reported per level: requests/s, p50 and p99 latency, failed requests (any status other than 200, or a connection
error or timeout), the mean batch size of the server's model calls (deltas of `mmsent_batch_size_sum` and
`_count` on GET /metrics over the timed requests), and the resident memory (RSS) of the server's whole process
tree before the load, after each level and after the load, and the CPU that tree uses over 5 s before any request (a share of
one core: what an idle server costs). The goal: with batching, >= 3x the requests/s of batch-1 serving at
concurrency 32 (tiny preset), and no failed request. Writes bench/results/serve.json (with `--device cuda`, the model on the
GPU: serve_cuda.json); asserts nothing.
"""
import argparse, asyncio, base64, contextlib, io, json, os, re, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

import common as C
import mmsent

GOAL = 3.0
GOAL_GPU_BASE_RPS, GOAL_GPU_BASE_P50 = 500, 80   # with --device cuda: the base preset, batching, at 32 in flight
TEXT = "The acting was wonderful, but the story dragged on far too long."


def payload()->tuple[dict, dict]:
    "The request every client sends (text, 1 s 16 kHz WAV, 64x64 PNG, base64 in JSON) and its description."
    import soundfile as sf
    from PIL import Image
    rng = np.random.default_rng(0)
    wav = io.BytesIO(); sf.write(wav, rng.uniform(-.5, .5, 16_000).astype(np.float32), 16_000, format='WAV', subtype='PCM_16')
    png = io.BytesIO(); Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(png, format='PNG')
    b64 = lambda b: base64.b64encode(b.getvalue()).decode()
    body = dict(text=TEXT, audio=b64(wav), image=b64(png))
    desc = dict(format='application/json', text_chars=len(TEXT), audio='1 s mono WAV, 16 kHz, 16-bit PCM, random noise, base64',
                audio_bytes=len(wav.getvalue()), image='64x64 RGB PNG, random pixels, base64', image_bytes=len(png.getvalue()),
                body_bytes=len(json.dumps(body)))
    return body, desc


def save_model(preset:str, d:Path)->Path:
    "The preset's model and processor saved as a model directory (base: built from its configs, random init, as bench/common.py does)."
    if preset == 'tiny':
        from mmsent.encoders import MultiModalProcessor
        from mmsent.model import EndToEndMultiModalModel
        EndToEndMultiModalModel.from_preset('tiny').save_pretrained(d, processor=MultiModalProcessor.from_pretrained('tiny'))
    else:
        model, proc = C.build(preset)
        proc.image_processor.size = {'height': 224, 'width': 224}   # the tiny processor's 64 px; the base ViT takes 224 px
        model.save_pretrained(d, processor=proc)
    return d


def tree_rss_mib()->float:
    "RSS of every process this one started (the server's process group: its main process, API server and workers), summed, in MiB."
    import psutil
    total = 0
    for p in psutil.Process().children(recursive=True):
        try: total += p.memory_info().rss
        except psutil.Error: pass
    return total/2**20


def idle_cpu(seconds:float=5.0)->float:
    "CPU time the server's whole process tree uses while no request arrives, over `seconds`, as a share of one core."
    import psutil
    def used(procs):
        t = 0.0
        for p in procs:
            try: c = p.cpu_times(); t += c.user + c.system
            except psutil.Error: pass
        return t
    procs = psutil.Process().children(recursive=True)
    t0 = used(procs); time.sleep(seconds)
    return (used(procs) - t0)/seconds


def server_procs()->int:
    import psutil
    return len(psutil.Process().children(recursive=True))


@contextlib.contextmanager
def served_from(package:str|None, folder:Path):
    """A server started inside runs the mmsent in `package` (None: the one this process imports), from `folder`.

    The server's command is `python -c ...`, which puts its working folder first on sys.path: started from the
    repository's root, a server imports the checkout's `mmsent/` whatever PYTHONPATH says. Checked here with the
    interpreter, environment and folder the server gets."""
    before, cwd = os.environ.get('PYTHONPATH'), os.getcwd()
    if package: os.environ['PYTHONPATH'] = package
    else: os.environ.pop('PYTHONPATH', None)
    os.chdir(folder)
    try:
        found = subprocess.run([sys.executable, '-c', 'import mmsent; print(mmsent.__file__)'], capture_output=True,
                               text=True, check=True).stdout.strip()
        want = Path(package)/'mmsent'/'__init__.py' if package else Path(mmsent.__file__)
        if Path(found).resolve() != want.resolve(): raise RuntimeError(f"the server would import {found}, not {want}")
        yield
    finally:
        os.chdir(cwd)
        if before is None: os.environ.pop('PYTHONPATH', None)
        else: os.environ['PYTHONPATH'] = before


async def metrics(client, url:str)->dict:
    from mmsent.serve import read_metrics
    r = await client.get(url + '/metrics')
    r.raise_for_status()
    return read_metrics(r.text)


def delta(m0:dict, m1:dict, prefix:str)->float:
    "The change of the samples whose name starts with `prefix` (summed over their labels)."
    tot = lambda m: sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + '{'))
    return tot(m1) - tot(m0)


async def load(client, url:str, body:dict, concurrency:int, n:int, max_seconds:float)->dict:
    "Keep `concurrency` requests in flight until `n` were sent or `max_seconds` passed; latencies of the good ones and the failures."
    import httpx
    lat, fails, sent = [], {}, 0
    raw, headers = json.dumps(body).encode(), {'content-type': 'application/json'}   # encoded once: the client's CPU is the server's too
    deadline = time.perf_counter() + max_seconds

    async def one_client():
        nonlocal sent
        while sent < n and time.perf_counter() < deadline:
            sent += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(url + '/predict', content=raw, headers=headers)
                key = None if r.status_code == 200 else str(r.status_code)
            except httpx.HTTPError as e: key = type(e).__name__
            if key is None: lat.append(time.perf_counter() - t0)
            else: fails[key] = fails.get(key, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return dict(seconds=time.perf_counter() - t0, sent=sent, latencies=lat, failures=fails)


WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
"""


def _wrk_ms(v:str)->float:
    "A wrk duration ('850.12us', '12.5ms', '1.02s', '2.1m') in milliseconds."
    num, unit = re.fullmatch(r'([0-9.]+)(us|ms|s|m)', v).groups()
    return float(num)*dict(us=1e-3, ms=1.0, s=1e3, m=6e4)[unit]


def load_wrk(url:str, body_file:Path, concurrency:int, seconds:float, timeout:float)->dict:
    "wrk (one thread, `concurrency` connections) for `seconds`: its requests/s, p50/p99, and every non-200 answer or socket error."
    lua = body_file.with_suffix('.lua')
    lua.write_text(WRK_LUA.format(body=body_file))
    cmd = ['wrk', '-t1', f'-c{concurrency}', f'-d{max(1, round(seconds))}s', f'--timeout={max(1, round(timeout))}s', '--latency', '-s', str(lua), url + '/predict']
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout + 30, check=True).stdout
    pct = dict(re.findall(r'^\s+(50|99)%\s+(\S+)$', out, re.M))
    n, secs, unit = re.search(r'(\d+) requests in ([0-9.]+)(\w+),', out).groups()
    secs = _wrk_ms(secs + unit)/1e3
    bad = int(m.group(1)) if (m := re.search(r'Non-2xx or 3xx responses: (\d+)', out)) else 0
    sock = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    fails = {k: int(v) for k, v in zip(('non-2xx', 'connect', 'read', 'write', 'timeout'), (bad, *(sock.groups() if sock else (0, 0, 0, 0)))) if int(v)}
    ok = int(n) - bad
    return dict(seconds=secs, sent=int(n), ok=ok, failures=fails, requests_per_s=ok/secs, p50_ms=_wrk_ms(pct['50']), p99_ms=_wrk_ms(pct['99']))


async def bench_server(url:str, body:dict, a)->list[dict]:
    import httpx
    rows = []
    limits = httpx.Limits(max_connections=max(a.concurrency) + 4, max_keepalive_connections=max(a.concurrency) + 4)
    async with httpx.AsyncClient(timeout=a.request_timeout, limits=limits) as client:
        await load(client, url, body, max(a.concurrency), a.warmup, min(a.max_seconds, 10))   # warm-up: threads, allocator, connections
        rss_before = tree_rss_mib()
        for conc in a.concurrency:
            await load(client, url, body, conc, conc, min(a.max_seconds, 5))   # the level's own short warm-up: its queue filled before timing
            m0 = await metrics(client, url)
            if a.client == 'wrk': r = await asyncio.to_thread(load_wrk, url, a.body_file, conc, a.max_seconds, a.request_timeout)
            else:
                r = await load(client, url, body, conc, a.requests, a.max_seconds)
                lat = sorted(r.pop('latencies'))
                r.update(ok=len(lat), requests_per_s=len(lat)/r['seconds'], p50_ms=1e3*statistics.median(lat) if lat else None,
                         p99_ms=1e3*lat[min(len(lat) - 1, int(np.ceil(.99*len(lat))) - 1)] if lat else None)
            m1 = await metrics(client, url)
            calls, samples = delta(m0, m1, 'mmsent_batch_size_count'), delta(m0, m1, 'mmsent_batch_size_sum')
            fails = sum(r['failures'].values())
            rows.append(dict(concurrency=conc, client=a.client, sent=r['sent'], ok=r['ok'], failed=fails, failures=r['failures'], seconds=r['seconds'],
                             requests_per_s=r['requests_per_s'], p50_ms=r['p50_ms'], p99_ms=r['p99_ms'],
                             mean_batch=samples/calls if calls else None, model_calls=int(calls),
                             server_200=int(delta(m0, m1, 'mmsent_requests_total{status="200"}')),
                             server_requests=int(delta(m0, m1, 'mmsent_requests_total')), rss_level_mib=tree_rss_mib()))
            print(f"    concurrency {conc:3d}: {rows[-1]['requests_per_s']:6.1f} req/s, p50 {rows[-1]['p50_ms'] or 0:7.1f} ms, "
                  f"p99 {rows[-1]['p99_ms'] or 0:7.1f} ms, mean batch {rows[-1]['mean_batch'] or 0:5.2f}, failed {fails}/{r['sent']}, RSS {rows[-1]['rss_level_mib']:.0f} MiB", flush=True)
        rss_after = tree_rss_mib()
    for r in rows: r.update(rss_before_mib=rss_before, rss_after_mib=rss_after)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--presets', nargs='+', default=['tiny'], help='tiny, base (random init, built from its configs)')
    ap.add_argument('--concurrency', type=int, nargs='+', default=[1, 8, 32], help='requests in flight, one level each')
    ap.add_argument('--requests', type=int, default=400, help='timed requests per level (at most)')
    ap.add_argument('--max_seconds', type=float, default=15, help='time cap per level: no request is sent after it (those in flight finish)')
    ap.add_argument('--warmup', type=int, default=32, help='untimed requests when a server starts (at most 10 s of them)')
    ap.add_argument('--max_batch_size', type=int, default=32, help='the batching server: --max_batch_size')
    ap.add_argument('--batch_timeout', type=float, default=0.01, help='the batching server: --batch_timeout, seconds')
    ap.add_argument('--modes', nargs='+', default=['batching', 'batch1'], choices=['batching', 'batch1'], help='the servers to run')
    ap.add_argument('--request_timeout', type=float, default=60, help="the client's timeout per request, seconds")
    ap.add_argument('--client', choices=['auto', 'wrk', 'httpx'], default='auto',
                    help="the load generator: wrk where it is installed (a C program: on 2 cores an httpx client takes about 1.7 ms of CPU a request that the server needs), else httpx")
    ap.add_argument('--device', choices=['cpu', 'cuda'], default='cpu', help="where the servers run the model (mmsent_serve --device)")
    ap.add_argument('--ref', default=None, help='also serve an earlier commit\'s package, in the same run, before this checkout\'s (writes serve_compare.json)')
    ap.add_argument('--rounds', type=int, default=1, help="servers of every commit and mode started this many times, in turn (the machine's speed drifts: with --ref, use 3 or more); goals compare medians over rounds")
    ap.add_argument('--serve_args', nargs=argparse.REMAINDER, default=[], help='more mmsent_serve options for both servers (last on the line)')
    a = ap.parse_args()
    from mmsent.serve import running_server
    if a.client == 'auto': a.client = 'wrk' if shutil.which('wrk') else 'httpx'
    body, desc = payload()
    work = Path(tempfile.mkdtemp(prefix='mmsent-bench-serve-'))
    a.body_file = work/'body.json'
    a.body_file.write_text(json.dumps(body))
    print(f"load generator: {a.client}" + (" (one thread; each level runs --max_seconds)" if a.client == 'wrk' else " (asyncio; each level at most --requests or --max_seconds)"), flush=True)
    print(f"payload: JSON, {desc['text_chars']} chars of text + {desc['audio']} ({desc['audio_bytes']} B) + {desc['image']} "
          f"({desc['image_bytes']} B): {desc['body_bytes']} B a request", flush=True)
    modes = {'batching': ['--max_batch_size', str(a.max_batch_size), '--batch_timeout', str(a.batch_timeout)], 'batch 1': ['--max_batch_size', '1']}
    modes = {k: v for k, v in modes.items() if k.replace(' ', '') in a.modes}
    rows, load_avg = [], [os.getloadavg()]
    codes = [(C.head_name(), None)]
    if a.ref:   # the earlier commit's package, extracted beside this one; its servers run first
        codes.insert(0, (a.ref, str(C.extract_package(a.ref, tempfile.mkdtemp(prefix='mmsent-bench-ref-')))))
    for preset in a.presets:
        with tempfile.TemporaryDirectory(prefix='mmsent-bench-serve-') as tmp:
            model_dir = save_model(preset, Path(tmp)/preset)
            for rnd, (code, package) in ((r, c) for r in range(a.rounds) for c in codes):
                for mode, args in modes.items():
                    args = [*args, '--device', a.device, *a.serve_args]
                    print(f"  {preset}, {mode}, {code}" + (f", round {rnd + 1} of {a.rounds}" if a.rounds > 1 else '') + f": mmsent_serve {' '.join(args)}", flush=True)
                    t0 = time.perf_counter()
                    with served_from(package, work), \
                            running_server(model_dir, *args, log=Path(tmp)/f'{mode.replace(" ", "")}.log') as url:
                        start_s = time.perf_counter() - t0
                        rss_idle, procs, cpu_idle = tree_rss_mib(), server_procs(), idle_cpu()
                        for r in asyncio.run(bench_server(url, body, a)):
                            rows.append(dict(code=code, preset=preset, mode=mode, round=rnd + 1, serve_args=' '.join(args), processes=procs, start_s=start_s, rss_idle_mib=rss_idle, idle_cpu=cpu_idle, **r))
                        print(f"    CPU of the server's processes before any request: {cpu_idle:.1%} of a core")
                        print(f"    RSS of the server's {procs} processes: {rss_idle:.0f} MiB idle, {rows[-1]['rss_before_mib']:.0f} MiB after the warm-up, "
                              f"{rows[-1]['rss_after_mib']:.0f} MiB after the load", flush=True)
    for _, package in codes:
        if package: shutil.rmtree(package, ignore_errors=True)
    load_avg.append(os.getloadavg())
    for r in rows: r['rss_growth_mib'] = r['rss_after_mib'] - r['rss_before_mib']
    print(f"\nmachine: {C.machine()}\nload average (1 min): {load_avg[0][0]:.2f} at the start, {load_avg[1][0]:.2f} at the end")
    print(C.table(rows, [('code', 'code', 's'), ('preset', 'preset', 's'), ('mode', 'mode', 's'), ('round', 'round', 'd'), ('concurrency', 'conc', 'd'), ('requests_per_s', 'req/s', '.1f'),
                         ('p50_ms', 'p50 ms', '.1f'), ('p99_ms', 'p99 ms', '.1f'), ('failed', 'failed', 'd'), ('sent', 'sent', 'd'),
                         ('mean_batch', 'mean batch', '.2f'), ('idle_cpu', 'idle CPU', '.1%'), ('rss_before_mib', 'RSS before MiB', '.0f'), ('rss_after_mib', 'RSS after MiB', '.0f')]))
    goals = {}
    for preset in a.presets:
        top = max(a.concurrency)
        def get(mode, code=codes[-1][0]):
            "The median requests/s over the rounds of one commit and mode at the top concurrency (None: not run)."
            got = [r['requests_per_s'] for r in rows if r['code'] == code and r['preset'] == preset and r['mode'] == mode and r['concurrency'] == top]
            return statistics.median(got) if got else None
        b, one = get('batching'), get('batch 1')
        if b and one:
            goals[f'batching_speedup_{preset}'] = dict(value=b/one, goal=GOAL, concurrency=top, rounds=a.rounds)
        if a.ref and b and get('batching', a.ref):
            goals[f'speedup_over_{a.ref}_{preset}'] = dict(value=b/get('batching', a.ref), goal=1.3, concurrency=top, rounds=a.rounds,
                                                          per_round=[r['requests_per_s']/q['requests_per_s'] for r, q in zip(
                                                              *[[x for x in rows if x['code'] == c and x['preset'] == preset and x['mode'] == 'batching' and x['concurrency'] == top]
                                                                for c in (codes[-1][0], a.ref)])])
        if a.device == 'cuda' and preset == 'base' and b:   # the model on a GPU: base at >= 500 requests/s with p50 <= 80 ms
            p50 = statistics.median(r['p50_ms'] for r in rows if r['code'] == codes[-1][0] and r['preset'] == preset
                                    and r['mode'] == 'batching' and r['concurrency'] == top)
            goals['gpu_base_served'] = dict(value=b, goal=GOAL_GPU_BASE_RPS, p50_ms=p50, goal_p50_ms=GOAL_GPU_BASE_P50, concurrency=top)
            print(f"goal: base on the GPU >= {GOAL_GPU_BASE_RPS} requests/s at {top} in flight with p50 <= {GOAL_GPU_BASE_P50} ms: "
                  f"{b:.0f} requests/s, p50 {p50:.0f} ms" + (' (met)' if b >= GOAL_GPU_BASE_RPS and p50 <= GOAL_GPU_BASE_P50 else ''))
    failed, sent = sum(r['failed'] for r in rows), sum(r['sent'] for r in rows)
    goals['failed_requests'] = dict(value=failed, goal=0, sent=sent)
    for k, g in goals.items():
        if k.startswith('batching_speedup'):
            print(f"goal: batching >= {GOAL:.0f}x the requests/s of batch-1 serving at concurrency {g['concurrency']} ({k.split('_')[-1]}): {g['value']:.2f}x"
                  + (' (met)' if g['value'] >= GOAL else f", short by {GOAL - g['value']:.2f}x"))
    print(f"goal: 0 failed requests: {failed} of {sent} failed" + (' (met)' if failed == 0 else ''))
    shutil.rmtree(work, ignore_errors=True)
    for k, g in goals.items():
        if k.startswith('speedup_over'):
            print(f"goal: >= 1.3x the requests/s of {a.ref} at concurrency {g['concurrency']}, with batching: {g['value']:.2f}x"
                  + (f" (medians of {a.rounds} rounds; each round's ratio: {', '.join(f'{x:.2f}x' for x in g['per_round'])})" if a.rounds > 1 else '')
                  + (' (met)' if g['value'] >= 1.3 else ''))
    C.write('serve' + ('_cuda' if a.device == 'cuda' else '') + ('_compare' if a.ref else ''), dict(payload=desc, options=dict({k: v for k, v in vars(a).items() if k != 'body_file'}, modes=modes), load_average=load_avg, rows=rows, goals=goals))


if __name__ == '__main__':
    main()
