"""Fuzzing the request path with hypothesis: any JSON shape, string (lone surrogates and NULs included) or bytes in any field
is either decoded or refused with a `RequestError` whose status is 4xx; over HTTP, no body makes the server answer 5xx, and
it is healthy after. Bounded: a fixed number of examples (derandomized, so CI sees the same ones), no deadline per example."""
import base64, io, json, os

import numpy as np
import pytest

pytest.importorskip('litserve'); pytest.importorskip('httpx'); pytest.importorskip('hypothesis')
import httpx
from hypothesis import HealthCheck, given, settings, strategies as st

from mmsent.serve import FIELDS, RequestError, decode_request, running_server

ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')


def _media():
    "A short WAV and a small PNG, the bytes a real client sends."
    import soundfile as sf
    from PIL import Image
    rng = np.random.default_rng(0)
    wav, png = io.BytesIO(), io.BytesIO()
    sf.write(wav, rng.normal(0, .1, 4_000).astype(np.float32), 16_000, format='WAV')
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(png, format='PNG')
    return wav.getvalue(), png.getvalue()

WAV, PNG = _media()
b64 = lambda b: base64.b64encode(b).decode()

any_text = st.lists(st.integers(0, 0x10FFFF), max_size=12).map(lambda cps: ''.join(map(chr, cps)))   # surrogates and NULs included
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | any_text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3), max_leaves=8)
media = (st.binary(max_size=300).map(b64) | st.sampled_from([b64(WAV), b64(PNG), 'data:image/png;base64,' + b64(PNG), 'data:x,yy',
                                                              'file:///etc/passwd', 'http://example.com/a.png', '', '====']) | json_values)
field_values = dict(text=any_text | json_values, context=st.lists(any_text, max_size=3) | json_values, explain=json_values,
                    audio=media, image=media, video=media)
payloads = st.fixed_dictionaries({}, optional={f: field_values[f] for f in FIELDS}) | st.dictionaries(any_text, json_values, max_size=4) | json_values


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    import torch
    from mmsent.encoders import MultiModalProcessor
    from mmsent.model import EndToEndMultiModalModel
    d = tmp_path_factory.mktemp('fuzz')
    torch.manual_seed(0)
    EndToEndMultiModalModel.from_preset('tiny').save_pretrained(d/'model', processor=MultiModalProcessor.from_pretrained('tiny'))
    return d/'model'


@pytest.fixture(scope='module')
def predictor(model_dir):
    from mmsent.predict import Predictor
    return Predictor.from_pretrained(model_dir, device='cpu')


def test_decode_request_decodes_or_refuses_every_payload(predictor):
    @settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(payloads)
    def check(payload):
        try: sample = decode_request(predictor, payload)
        except RequestError as e: assert 400 <= e.status < 500 and e.field, e
        else: assert isinstance(sample, dict) and set(sample) >= {'text', 'audio', 'image'}
    check()


def _multipart(fields:dict)->tuple[bytes, str]:
    "A multipart body from {name: str or bytes} (bytes become files), and its content type."
    req = httpx.Request('POST', 'http://x/', data={k: v for k, v in fields.items() if isinstance(v, str)},
                        files={k: (k, v) for k, v in fields.items() if isinstance(v, bytes)} or {'audio': ('a.wav', WAV)})
    return req.read(), req.headers['content-type']

bodies = st.one_of(
    payloads.map(lambda p: (json.dumps(p, allow_nan=True).encode('utf-8', 'surrogatepass'), 'application/json')),
    st.binary(max_size=500).map(lambda b: (b, 'application/json')),
    st.dictionaries(st.sampled_from(FIELDS + ('other',)), st.binary(max_size=200) | any_text.map(lambda s: s.replace('\x00', '')), max_size=4).map(_multipart),
    st.binary(max_size=500).map(lambda b: (b, 'multipart/form-data; boundary=xyz')),
    st.tuples(st.binary(max_size=100), st.sampled_from(['text/plain', '', 'multipart/form-data', 'application/json; charset=latin-1'])))


def test_no_body_makes_the_server_fail(model_dir):
    "Random bodies of every content type to POST /predict: never a 5xx, and /health is 200 after."
    with running_server(model_dir, '--max_request_mb', '1', '--read_timeout', '5') as url, httpx.Client(base_url=url, timeout=60) as c:
        statuses = []
        @settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
        @given(bodies)
        def check(body_type):
            body, ctype = body_type
            r = c.post('/predict', content=body, headers={'content-type': ctype} if ctype else {})
            statuses.append(r.status_code)
            assert r.status_code < 500, (r.status_code, r.text[:300], body[:200], ctype)
        check()
        assert c.get('/health').status_code == 200
    assert any(s == 200 for s in statuses) and any(400 <= s < 500 for s in statuses), sorted(set(statuses))
