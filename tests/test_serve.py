"mmsent_serve as a client meets it: good requests (JSON, multipart, ONNX Runtime), each kind of bad request answered 4xx naming what is wrong, the command line and the server agreeing, two replicas sharing the load, and the queue timeout."
import base64, concurrent.futures as cf, contextlib, io, json, os, shutil, signal, socket, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest

pytest.importorskip('litserve'); pytest.importorskip('httpx')
import httpx
from mmsent.serve import _free_port, read_metrics, running_server

ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
b64 = lambda p: base64.b64encode(Path(p).read_bytes()).decode()


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    "A saved tiny model, its ONNX export, a sound, an image and a text file."
    import soundfile as sf, torch
    from PIL import Image
    from mmsent.encoders import MultiModalProcessor
    from mmsent.export import export_onnx
    from mmsent.model import EndToEndMultiModalModel
    d = tmp_path_factory.mktemp('serve')
    torch.manual_seed(0)
    EndToEndMultiModalModel.from_preset('tiny').save_pretrained(d/'model', processor=MultiModalProcessor.from_pretrained('tiny'))
    rng = np.random.default_rng(0)
    sf.write(d/'voice.wav', rng.normal(0, 0.1, 20_000).astype(np.float32), 16_000)
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(d/'face.png')
    (d/'notes.txt').write_text('this is a text file, not a sound or a picture\n')
    if 'onnxscript' in sys.modules or __import__('importlib').util.find_spec('onnxscript'): export_onnx(d/'model', d/'onnx')
    return d


@pytest.fixture(scope='module')
def server(files):
    "One worker, batches of up to 8, a 0.2 s batching window, 1 MiB bodies sent within 2 s, file:// URLs allowed under the files' folder."
    with running_server(files/'model', '--workers', '1', '--max_batch_size', '8', '--batch_timeout', '0.2', '--max_request_mb', '1', '--read_timeout', '2',
                        '--allow_files', str(files), log=files/'server.log') as url:
        with httpx.Client(base_url=url, timeout=60) as c: yield c


def test_json_multipart_and_file_urls_agree(server, files):
    a = server.post('/predict', json={'text': 'so good', 'audio': b64(files/'voice.wav'), 'image': b64(files/'face.png')})
    with open(files/'voice.wav', 'rb') as w, open(files/'face.png', 'rb') as i:
        b = server.post('/predict', data={'text': 'so good'}, files={'audio': ('voice.wav', w), 'image': ('face.png', i)})
    c = server.post('/predict', json={'text': 'so good', 'audio': f"file://{files/'voice.wav'}", 'image': f"file://{files/'face.png'}"})
    for r in (a, b, c): assert r.status_code == 200, r.text
    a, b, c = a.json(), b.json(), c.json()
    assert a['modalities'] == ['text', 'audio', 'visual']
    assert set(a) >= {'label', 'probs', 'unimodal', 'attention', 'modality_weights', 'shapley'}
    np.testing.assert_allclose(list(a['probs'].values()), list(b['probs'].values()), atol=1e-6)
    np.testing.assert_allclose(list(a['probs'].values()), list(c['probs'].values()), atol=1e-6)
    assert server.get('/health').status_code == 200


def test_the_command_line_and_the_server_agree(server, files):
    script = files/'predict.py'   # as the console script calls it (fastcore's call_parse reads sys.argv of a script)
    script.write_text('from mmsent.predict import mmsent_predict\nmmsent_predict()\n')
    r = subprocess.run([sys.executable, str(script), '--model', str(files/'model'), '--device', 'cpu',
                        '--text', 'not my day', '--audio', str(files/'voice.wav'), '--image', str(files/'face.png'), '--json'],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    cli = json.loads(r.stdout)
    got = server.post('/predict', json={'text': 'not my day', 'audio': b64(files/'voice.wav'), 'image': b64(files/'face.png'), 'explain': True}).json()
    assert got['label'] == cli['label']
    np.testing.assert_allclose(list(got['probs'].values()), list(cli['probs'].values()), atol=1e-5)
    np.testing.assert_allclose(list(got['shapley'].values()), list(cli['shapley'].values()), atol=1e-5)


@pytest.mark.parametrize('send, status, field, says', [
    (dict(json={}), 422, 'body', 'no input'),
    (dict(json={'txt': 'hi'}), 422, 'txt', "did you mean 'text'"),
    (dict(json={'audio': 'notes'}), 422, 'audio', 'not valid base64'),
    (dict(files={'audio': ('notes.txt', b'this is a text file, not a sound')}), 422, 'audio', 'notes.txt'),
    (dict(json={'image': base64.b64encode(b'this is a text file, not a picture').decode()}), 422, 'image', 'cannot read image'),
    (dict(files={'image': ('notes.txt', b'not a picture')}, data={'text': 'hi'}), 422, 'image', 'notes.txt'),
    (dict(json={'text': 'x'*(2 << 20)}), 413, 'body', 'limit of 1 MiB'),
    (dict(files={'video': ('big.mp4', b'0'*(2 << 20))}), 413, 'body', 'limit of 1 MiB'),
    (dict(content=b'so good', headers={'content-type': 'text/plain'}), 415, 'Content-Type', "got 'text/plain'"),
    (dict(content=b'{"text": "so good"', headers={'content-type': 'application/json'}), 400, 'body', 'not valid JSON'),
    (dict(json={'audio': 'file:///etc/passwd'}), 403, 'audio', 'outside the folder'),
    (dict(json={'audio': 'https://example.com/a.wav'}), 422, 'audio', 'not fetched'),
])
def test_bad_requests_are_4xx_naming_the_field(server, send, status, field, says):
    r = server.post('/predict', **send)
    assert r.status_code == status, r.text
    body = r.json()
    assert body['field'] == field and says in body['detail'], body
    assert '/tmp' not in body['detail'] and 'mmsent-serve-' not in body['detail'], body


def raw_http(port:int, data:bytes, close_write:bool=False)->bytes:
    "Send `data` as it is on a new connection (shutting down the sending side after, if asked), and return all the server answers."
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        s.sendall(data)
        if close_write: s.shutdown(socket.SHUT_WR)
        got = []
        with contextlib.suppress(socket.timeout, ConnectionResetError):
            while (chunk := s.recv(65536)): got.append(chunk)
        return b''.join(got)


def test_lying_and_cut_bodies_are_4xx(server):
    "A Content-Length larger than the body sent (408 after --read_timeout), one smaller (400), and an upload the client cuts off; the server stays healthy."
    port = server.base_url.port
    head = lambda n, ctype='application/json': f'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {n}\r\n\r\n'.encode()
    body = b'{"text": "so good"}'
    t0 = time.monotonic()
    longer = raw_http(port, head(1000) + body)
    assert longer.startswith(b'HTTP/1.1 408') and b'did not arrive within 2 s' in longer and time.monotonic() - t0 < 8, longer[:300]
    shorter = raw_http(port, head(5) + body)   # the body is cut at 5 bytes; what follows is not a request (uvicorn answers it)
    assert shorter.startswith(b'HTTP/1.1 400'), shorter[:300]
    cut = raw_http(port, head(600, 'multipart/form-data; boundary=xyz') + b'--xyz\r\nContent-Disposition: form-data; name="text"\r\n\r\nhal', close_write=True)
    assert cut == b'' or cut.startswith(b'HTTP/1.1 4'), cut[:300]
    assert server.get('/health').status_code == 200 and server.post('/predict', json={'text': 'fine'}).status_code == 200


def group_rss_mib(port:int)->float:
    "Resident memory of every process of the mmsent_serve listening on `port` (its process group), in MiB."
    ps = subprocess.run(['ps', '-eww', '-o', 'pid=,args='], capture_output=True, text=True).stdout.splitlines()
    pids = [l.split()[0] for l in ps if 'mmsent_serve' in l and f'--port {port}' in l]   # the main process and its forked children
    groups = {subprocess.run(['ps', '-o', 'pgid=', '-p', pid], capture_output=True, text=True).stdout.strip() for pid in pids} - {''}
    assert len(groups) == 1, (pids, groups)
    return sum(int(x) for x in subprocess.run(['ps', '-o', 'rss=', '-g', groups.pop()], capture_output=True, text=True).stdout.split())/1024


def test_hostile_files_are_4xx_and_the_memory_stays_bounded(server, hostile):
    "A decompression bomb, a 144-megapixel picture in 18 KB, garbage, a truncated mp4 and 200,000 characters of text, three times each as"
    " JSON and as a form: each gets its 4xx, the server stays healthy and its processes grow by less than 200 MiB."
    h = hostile
    cases = [('image', 'bomb.png', 413, 'image too large (400,000,000 pixels)'), ('image', 'huge.png', 413, 'image too large (12000 x 12000)'),
             ('image', 'garbage.png', 422, 'cannot read image'), ('video', 'truncated.mp4', 422, 'video stream')]   # cut in half: no codec parameters, or no video stream at all
    before = group_rss_mib(server.base_url.port)
    for _ in range(3):
        for field, name, status, says in cases:
            r = server.post('/predict', json={field: b64(h/name)})
            assert r.status_code == status and r.json()['field'] == field and says in r.json()['detail'], (name, r.status_code, r.text)
            with open(h/name, 'rb') as f: r = server.post('/predict', files={field: (name, f)})
            assert r.status_code == status and says in r.json()['detail'], (name, r.status_code, r.text)
        r = server.post('/predict', json={'text': 'a'*200_000})
        assert r.status_code == 413 and r.json()['field'] == 'text', r.text
    assert server.get('/health').status_code == 200
    grown = group_rss_mib(server.base_url.port) - before
    assert grown < 200, f"the server's processes grew by {grown:.0f} MiB"


def test_a_bad_request_fails_alone_in_its_batch(server, files):
    "A good and a bad request sent together share a batch; only the bad one fails."
    before = read_metrics(server.get('/metrics').text)
    with cf.ThreadPoolExecutor(2) as ex:
        good = ex.submit(server.post, '/predict', json={'text': 'fine'})
        bad = ex.submit(server.post, '/predict', json={'image': base64.b64encode(b'words').decode()})
        good, bad = good.result(), bad.result()
    assert (good.status_code, bad.status_code) == (200, 422)
    after = read_metrics(server.get('/metrics').text)
    assert after['mmsent_requests_total{status="200"}'] - before['mmsent_requests_total{status="200"}'] == 1
    assert after['mmsent_batch_size_sum'] - before['mmsent_batch_size_sum'] == 1


def test_two_replicas_share_the_load_and_time_out(files):
    "--workers 2: both worker processes make model calls; a queue longer than --timeout is answered 504."
    with running_server(files/'model', '--workers', '2', '--max_batch_size', '1', '--timeout', '0.3', log=files/'replicas.log') as url:
        with httpx.Client(base_url=url, timeout=60) as c, cf.ThreadPoolExecutor(16) as ex:
            rs = list(ex.map(lambda i: c.post('/predict', json={'text': f'request {i}', 'image': b64(files/'face.png')}), range(64)))
            m = read_metrics(c.get('/metrics').text)
    codes = [r.status_code for r in rs]
    assert set(codes) <= {200, 504} and codes.count(200) >= 2, codes
    workers = [k for k, v in m.items() if k.startswith('mmsent_model_calls_total') and v > 0]
    assert len(workers) == 2, m
    if 504 in codes: assert 'timed out' in rs[codes.index(504)].text.lower()


def test_onnxruntime_backend_serves_the_same_probabilities(server, files):
    if not (files/'onnx').exists(): pytest.skip('onnxscript is not installed')
    with running_server(files/'onnx', '--backend', 'onnxruntime', log=files/'ort.log') as url:
        got = httpx.post(url + '/predict', json={'text': 'so good', 'image': b64(files/'face.png')}, timeout=60).json()
    ref = server.post('/predict', json={'text': 'so good', 'image': b64(files/'face.png')}).json()
    np.testing.assert_allclose(list(got['probs'].values()), list(ref['probs'].values()), atol=1e-4)
    assert got['shapley'] is None and got['attention'] is not None


def test_bad_options_are_one_line(files, tmp_path):
    def err(*args):
        r = subprocess.run([sys.executable, '-c', 'from mmsent.serve import mmsent_serve; mmsent_serve()', *args], capture_output=True, text=True, env=ENV, timeout=120)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        return r.stderr
    assert 'argument --int8: needs --backend onnxruntime' in err('--model', str(files/'model'), '--int8')
    assert 'argument --allow_files: is not a folder' in err('--model', str(files/'model'), '--allow_files', str(tmp_path/'nope'))
    assert 'model.onnx is missing' in err('--model', str(files/'model'), '--backend', 'onnxruntime')


@contextlib.contextmanager
def serve_process(model, port:int, *args:str, env:dict=ENV):
    "mmsent_serve in its own process group, once GET /health answers 200: yields the main process (stderr piped), and kills the group on exit."
    p = subprocess.Popen([sys.executable, '-c', 'from mmsent.serve import mmsent_serve; mmsent_serve()', '--model', str(model),
                          '--port', str(port), '--shutdown_timeout', '3', *args], start_new_session=True, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert p.poll() is None and time.monotonic() < deadline, 'mmsent_serve did not start'
            try:
                if httpx.get(f'http://127.0.0.1:{port}/health', timeout=2).status_code == 200: break
            except httpx.HTTPError: time.sleep(0.25)
        yield p
    finally:
        with contextlib.suppress(ProcessLookupError): os.killpg(p.pid, signal.SIGKILL)


def assert_nothing_left(p, port:int, within:float=3.0):
    """No live process of the server's group `within` seconds of the main process's exit (zombies left out: they hold
    nothing, and init reaps them), and the port binds as uvicorn binds it. The seconds let a process that is already
    exiting finish (seen once: a process of the group still running, state R, just after the main process exited)."""
    deadline = time.monotonic() + within
    while True:
        out = subprocess.run(['ps', '-o', 'pid=,stat=,args=', '-g', str(p.pid)], capture_output=True, text=True).stdout.split('\n')
        alive = [l for l in out if l.strip() and not l.split()[1].startswith('Z')]
        if not alive or time.monotonic() > deadline: break
        time.sleep(0.1)
    assert not alive, alive
    with socket.socket() as s:   # SO_REUSEADDR: a closed connection's TIME_WAIT does not hold the port
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', port))


@pytest.mark.parametrize('sig', ['SIGTERM', 'SIGINT'])
def test_a_signal_stops_every_process_and_frees_the_port(files, sig):
    """kill -TERM (or -INT) on mmsent_serve's main process: the requests in flight are answered 200, a request after the signal
    is refused, the server exits 0 within the grace period, no process of its group is left, the port is free."""
    port = _free_port()
    url = f'http://127.0.0.1:{port}/predict'
    with serve_process(files/'model', port, '--max_batch_size', '64', '--batch_timeout', '2.5') as p, cf.ThreadPoolExecutor(8) as pool:
        def post(i):   # a new connection each: a pooled one would be closed under it by the drain
            try: return httpx.post(url, json={'text': f'request {i}'}, timeout=20).status_code
            except httpx.HTTPError as e: return type(e).__name__
        in_flight = [pool.submit(post, i) for i in range(6)]   # held by the worker, filling its batch, when the signal comes
        time.sleep(1.0)
        t0 = time.monotonic()
        p.send_signal(getattr(signal, sig))
        time.sleep(0.5)
        late = post(99)
        assert [f.result() for f in in_flight] == [200]*6 and late in ('ConnectError', 'ReadError', 'RemoteProtocolError'), ([f.result() for f in in_flight], late)
        _, err = p.communicate(timeout=3 + 5 + 10)
        assert p.returncode == 0 and time.monotonic() - t0 < 3 + 5, (p.returncode, err[-2000:])
        assert 'Traceback' not in err, err[-2000:]
        assert_nothing_left(p, port)


def test_an_api_key_guards_everything_but_health(files):
    "--api_key: no key or a wrong one is 401 (no body read), the right Bearer token is served; /health stays open for probes."
    with running_server(files/'model', '--api_key', 'k3y-for-tests') as url, httpx.Client(base_url=url, timeout=60) as c:
        plain = c.post('/predict', json={'text': 'fine'})
        wrong = c.post('/predict', json={'text': 'fine'}, headers={'Authorization': 'Bearer nope'})
        right = c.post('/predict', json={'text': 'fine'}, headers={'Authorization': 'Bearer k3y-for-tests'})
        metrics, health = c.get('/metrics'), c.get('/health')
    assert [r.status_code for r in (plain, wrong, right, metrics, health)] == [401, 401, 200, 401, 200]
    assert plain.json()['field'] == 'Authorization' and right.json()['modalities'] == ['text']


def test_a_killed_worker_is_restarted_and_the_requests_it_held_get_503(files, tmp_path):
    """kill -9 on the model worker while it holds requests: they are answered 503 and /health 503 at once; a new worker is
    started and serves, also once the model folder is gone; a second death, over --worker_restarts 1, stops the server with
    exit status 1 and leaves no process or port behind."""
    model = Path(shutil.copytree(files/'model', tmp_path/'model'))
    port = _free_port()
    base = f'http://127.0.0.1:{port}'
    def worker_pids():   # from the workers' own model-call counters
        calls = read_metrics(httpx.get(base + '/metrics', timeout=10).text)
        return {int(k.split('"')[1]) for k in calls if k.startswith('mmsent_model_calls_total{worker=')}
    with serve_process(model, port, '--workers', '1', '--worker_restarts', '1', '--max_batch_size', '64', '--batch_timeout', '2.5') as p, \
            cf.ThreadPoolExecutor(6) as pool:
        assert httpx.post(base + '/predict', json={'text': 'fine'}, timeout=60).status_code == 200
        (first,) = worker_pids()
        held = [pool.submit(httpx.post, base + '/predict', json={'text': f'request {i}'}, timeout=20) for i in range(6)]
        time.sleep(1.0)   # read by the worker, which waits for its batch to fill
        os.kill(first, signal.SIGKILL)
        answers = [f.result() for f in held]
        assert [a.status_code for a in answers] == [503]*6 and answers[0].headers['retry-after'] == '1', [a.text for a in answers]
        assert 'worker 0' in answers[0].json()['detail']
        assert httpx.get(base + '/health', timeout=10).status_code == 503
        deadline = time.monotonic() + 120
        while httpx.get(base + '/health', timeout=10).status_code != 200:
            assert time.monotonic() < deadline and p.poll() is None, 'no new worker'
            time.sleep(0.25)
        model.rename(tmp_path/'moved')   # the model folder becomes unreadable: the workers hold the model
        assert httpx.post(base + '/predict', json={'text': 'fine'}, timeout=60).status_code == 200
        (second,) = worker_pids() - {first}
        assert read_metrics(httpx.get(base + '/metrics', timeout=10).text)['mmsent_worker_restarts_total'] == 1
        os.kill(second, signal.SIGKILL)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 1 and 'more than --worker_restarts 1 allows; the server stopped' in err, (p.returncode, err[-2000:])
        assert 'Traceback' not in err, err[-2000:]
        assert_nothing_left(p, port)


def test_a_full_disk_under_the_metrics_folder_loses_metric_values_not_requests(files, tmp_path):
    """The metrics folder on a full file system (a 64 KiB tmpfs, filled up): the server starts and answers 200, and GET /metrics
    counts the values it could not write. (prometheus_client alone dies there of SIGBUS at its first write.)"""
    full = tmp_path/'full'
    full.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(full)], capture_output=True).returncode:
        pytest.skip('mounting a tmpfs needs root')
    try:
        (full/'metrics').mkdir()
        with pytest.raises(OSError), open(full/'filler', 'wb') as f:
            while True: f.write(bytes(4096)); f.flush()
        port = _free_port()
        with serve_process(files/'model', port, env=dict(ENV, PROMETHEUS_MULTIPROC_DIR=str(full/'metrics'))) as p:
            answers = [httpx.post(f'http://127.0.0.1:{port}/predict', json={'text': 'fine'}, timeout=60).status_code for _ in range(3)]
            got = read_metrics(httpx.get(f'http://127.0.0.1:{port}/metrics', timeout=10).text)
            assert answers == [200]*3 and p.poll() is None
            assert got['mmsent_metrics_write_errors_total'] >= 3, got
    finally:
        subprocess.run(['umount', str(full)], check=True)
