"The Streamlit app end to end: `mmsent_app` serves it on a localhost port, headless Chromium (Debian's, driven by Playwright) enters a text, uploads a WAV and a PNG, and finds the prediction and the attention heatmap; an unreadable upload gets a message in the page."
import os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path
import numpy as np
import pytest

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
# CI installs Debian's chromium (.ci/run); elsewhere the test is skipped without it
needs_browser = pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get('CI'), reason='no chromium (apt-get install chromium)')


def screenshot_app():
    "tools/screenshot_app.py (the docs' app screenshot) as a module: `save_screenshot`, `is_blank`."
    import importlib.util
    spec = importlib.util.spec_from_file_location('screenshot_app', Path(__file__).resolve().parent.parent/'tools'/'screenshot_app.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def _free_port()->int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    "A saved tiny model, a WAV, a PNG and a text file posing as an image."
    import soundfile as sf, torch
    from PIL import Image
    from mmsent.encoders import MultiModalProcessor
    from mmsent.model import EndToEndMultiModalModel
    d = tmp_path_factory.mktemp('app')
    torch.manual_seed(0)
    EndToEndMultiModalModel.from_preset('tiny').save_pretrained(d/'model', processor=MultiModalProcessor.from_pretrained('tiny'))
    rng = np.random.default_rng(0)
    sf.write(d/'voice.wav', rng.normal(0, 0.1, 16_000).astype(np.float32), 16_000)
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(d/'face.png')
    (d/'notes.png').write_text('not an image')
    (d/'clip.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + bytes(300))   # a corrupt video
    sf.write(d/'nan.wav', np.full(1_600, np.nan, np.float32), 16_000, subtype='FLOAT')
    shutil.copytree(d/'model', d/'broken_model'); (d/'broken_model'/'config.json').write_text('[1, 2]')
    return d


@pytest.fixture(scope='module')
def server(files):
    "`mmsent_app` on a free localhost port, until the module's tests end."
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    log = open(files/'server.log', 'w')
    proc = subprocess.Popen([str(BIN/'mmsent_app'), '--model', str(files/'model'), '--port', str(port), '--address', '127.0.0.1', '--device', 'cpu'],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=files)
    url = f'http://127.0.0.1:{port}'
    try:
        for _ in range(240):
            if proc.poll() is not None: pytest.fail(f'mmsent_app exited with {proc.returncode}:\n' + (files/'server.log').read_text())
            try:
                if urllib.request.urlopen(url + '/_stcore/health', timeout=2).read() == b'ok': break
            except OSError: time.sleep(0.5)
        else: pytest.fail('mmsent_app did not answer within 120 s:\n' + (files/'server.log').read_text())
        yield url
    finally:
        proc.terminate()
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()


@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    if not os.path.exists(CHROMIUM): pytest.fail(f'{CHROMIUM} not found: CI installs it with apt-get install chromium (.ci/run)')
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                              '--disable-background-networking', '--disable-component-update', '--disable-sync'])
        yield b
        b.close()


def open_app(browser, server):
    page = browser.new_page(viewport={'width': 1400, 'height': 1100})
    page.set_default_timeout(90_000)
    page.goto(server)
    page.get_by_text('mmsent: multimodal sentiment').wait_for()
    page.get_by_role('button', name='Predict').wait_for()
    return page


def upload(page, label:str, path:Path):
    box = page.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    box.locator('input[type=file]').set_input_files(str(path))
    page.get_by_text(path.name).wait_for()


def predict_for_messages(page, *says:str)->list[str]:
    "Click Predict, wait for a message holding each of `says`, and return every message's text."
    page.get_by_role('button', name='Predict').click()
    alerts = page.locator('[data-testid="stAlert"]')
    for s in says: alerts.filter(has_text=s).wait_for()
    return alerts.all_inner_texts()


def nothing_predicted(page)->bool:
    "No prediction in the page and no exception box."
    return not page.get_by_text('Predicted sentiment: ').count() and not page.locator('[data-testid="stException"]').count()


@needs_browser
@pytest.mark.slow
def test_text_wav_png_prediction_and_heatmap(browser, server, files):
    page = open_app(browser, server)
    page.get_by_label('Text').fill('what a wonderful evening 🎉')
    upload(page, 'Audio', files/'voice.wav')
    upload(page, 'Image', files/'face.png')
    page.get_by_role('button', name='Predict').click()
    head = page.get_by_text('Predicted sentiment: ')
    head.wait_for()
    assert head.inner_text().split(': ')[1].strip() in ('negative', 'neutral', 'positive')
    page.get_by_text('from text + audio + visual').wait_for()
    page.get_by_text('Modality attention').wait_for()
    heatmap = page.locator('[data-testid="stImage"] img, [data-testid="stPyplot"] img').first
    heatmap.wait_for()
    assert heatmap.evaluate('i => i.complete && i.naturalWidth') > 100   # the figure, rendered
    page.get_by_text('Class probabilities').wait_for()
    page.get_by_text('Modality Shapley values', exact=True).wait_for()   # the section heading, with its figure
    page.locator('[data-testid="stImage"] img, [data-testid="stPyplot"] img').nth(1).wait_for()   # rendered after the heading, on a busy machine later
    assert page.locator('[data-testid="stImage"] img, [data-testid="stPyplot"] img').count() >= 2
    shot = screenshot_app().save_screenshot(page, files/'app.png')   # as tools/screenshot_app.py makes nbs/images/app.png
    assert not screenshot_app().is_blank(shot)
    assert not page.locator('[data-testid="stException"]').count()


@needs_browser
@pytest.mark.slow
def test_unreadable_upload_is_a_message_in_the_page(browser, server, files):
    page = open_app(browser, server)
    upload(page, 'Image', files/'notes.png')
    texts = predict_for_messages(page, 'notes.png')
    assert any('image file notes.png' in t for t in texts), texts
    assert nothing_predicted(page)


@needs_browser
@pytest.mark.slow
def test_unreadable_uploads_are_named_as_uploaded(browser, server, files):
    "Each unusable upload is a message naming the file the user chose, never the server's temporary folder."
    page = open_app(browser, server)
    page.get_by_label('Text').fill('hello')
    upload(page, 'Audio', files/'nan.wav')
    upload(page, 'Video', files/'clip.mp4')
    texts = predict_for_messages(page, 'nan.wav', 'clip.mp4')
    assert any('audio file nan.wav' in t and 'NaN or infinite samples' in t for t in texts), texts
    assert any('video file clip.mp4' in t for t in texts), texts
    for t in texts: assert '/tmp' not in t and tempfile.gettempdir() not in t and str(files) not in t, t
    assert nothing_predicted(page)


@needs_browser
@pytest.mark.slow
def test_broken_model_config_is_one_line(browser, server, files):
    "A model directory whose config.json is a JSON list: one message in the page, no exception box."
    page = open_app(browser, server)
    box = page.get_by_role('textbox', name='Model directory')
    box.fill(str(files/'broken_model')); box.press('Enter')
    err = page.locator('[data-testid="stAlert"]').filter(has_text='config.json')
    err.wait_for()
    assert 'Cannot load a model from' in err.inner_text() and '\n' not in err.inner_text().strip(), err.inner_text()
    assert not page.locator('[data-testid="stException"]').count()


@needs_browser
@pytest.mark.slow
def test_hostile_uploads_and_text_are_messages_in_the_page(browser, server, hostile):
    """A decompression bomb, a 144-megapixel picture in 18 KB and half an mp4 uploaded together, then a text over the
    100,000-character limit: a message for each, naming the file or the text, no exception box and nothing predicted."""
    page = open_app(browser, server)
    page.get_by_label('Text').fill('hello')
    upload(page, 'Image', hostile/'bomb.png')
    upload(page, 'Video', hostile/'truncated.mp4')
    texts = predict_for_messages(page, 'bomb.png', 'truncated.mp4')
    assert any('image file bomb.png' in t and 'image too large (400,000,000 pixels)' in t for t in texts), texts
    assert nothing_predicted(page)
    page = open_app(browser, server)
    upload(page, 'Image', hostile/'huge.png')
    predict_for_messages(page, 'image too large (12000 x 12000)')
    page = open_app(browser, server)
    page.get_by_label('Text').fill('a'*100_001)
    predict_for_messages(page, 'text is 100,001 characters long; the limit is 100,000')
    assert nothing_predicted(page)
