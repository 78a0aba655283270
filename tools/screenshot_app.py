"""A screenshot of the Streamlit app for its docs page (nbs/images/app.png), and the check that a screenshot is not blank.

    python tools/screenshot_app.py [--out nbs/images/app.png]

Serves `mmsent_app` with the tiny preset (random weights: the point is the page, not the prediction) on a free
localhost port, enters a synthetic sentence, voice and face (`mmsent.synth`), presses Predict in headless Chromium
(Debian's, driven by Playwright) and saves the page. tests/test_app.py shares `save_screenshot` and `is_blank`.
"""
from __future__ import annotations
import argparse, io, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync']


def is_blank(png:bytes|Path, min_std:float=8.0, min_colors:int=16)->bool:
    "True when an image is (almost) one colour: a page that did not render."
    import numpy as np
    from PIL import Image
    im = Image.open(io.BytesIO(png) if isinstance(png, bytes) else png).convert('RGB')
    a = np.asarray(im.resize((min(im.width, 400), max(1, im.height*min(im.width, 400)//im.width))), dtype=np.float32)
    return float(a.std()) < min_std or len(np.unique(a.reshape(-1, 3).astype(np.uint8), axis=0)) < min_colors


def save_screenshot(page, dest:Path, width:int=1200)->Path:
    "The whole page as an optimised PNG at most `width` pixels wide; raises when it is blank."
    from PIL import Image
    # Streamlit scrolls its main area inside the page: grow the window to the tallest scrolling box to see all of it
    h = page.evaluate('Math.max(...Array.from(document.querySelectorAll("*"), e => e.scrollHeight))')
    vp = page.viewport_size
    if h > vp['height']: page.set_viewport_size({'width': vp['width'], 'height': min(int(h) + 40, 6000)}); page.wait_for_timeout(500)
    png = page.screenshot(full_page=True)
    if is_blank(png): raise AssertionError('the app screenshot is blank')
    im = Image.open(io.BytesIO(png)).convert('RGB')
    if im.width > width: im = im.resize((width, im.height*width//im.width), Image.LANCZOS)
    dest = Path(dest); dest.parent.mkdir(parents=True, exist_ok=True)
    im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(dest, optimize=True)
    return dest


def _free_port()->int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _inputs(d:Path)->tuple[Path, str, Path, Path]:
    "A tiny model, and a positive sentence, voice and face from the synthetic set's generators."
    import numpy as np, soundfile as sf, torch
    from mmsent.encoders import MultiModalProcessor
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.synth import synth_face, synth_text, synth_voice
    torch.manual_seed(0)
    EndToEndMultiModalModel.from_preset('tiny').save_pretrained(d/'models'/'tiny', processor=MultiModalProcessor.from_pretrained('tiny'))
    rng = np.random.default_rng(3)
    sf.write(d/'voice.wav', synth_voice(2, rng), 16_000)
    synth_face(2, rng, size=192).save(d/'face.png')
    return Path('models')/'tiny', synth_text(2, rng), d/'voice.wav', d/'face.png'   # the model relative to the app's folder, as a user types it


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT/'nbs'/'images'/'app.png'))
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        model, text, wav, png = _inputs(d)
        port, bin_ = _free_port(), Path(sys.executable).parent
        env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1', MPLBACKEND='Agg')
        with open(d/'server.log', 'w') as log:
            proc = subprocess.Popen([str(bin_/'mmsent_app'), '--model', str(model), '--port', str(port), '--address', '127.0.0.1', '--device', 'cpu'],
                                    stdout=log, stderr=subprocess.STDOUT, env=env, cwd=d)
            try:
                url = f'http://127.0.0.1:{port}'
                for _ in range(240):
                    if proc.poll() is not None: sys.exit('mmsent_app exited:\n' + (d/'server.log').read_text())
                    try:
                        if urllib.request.urlopen(url + '/_stcore/health', timeout=2).read() == b'ok': break
                    except OSError: time.sleep(0.5)
                else: sys.exit('mmsent_app did not answer within 120 s')
                with sync_playwright() as p:
                    b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
                    page = b.new_page(viewport={'width': 1300, 'height': 1000})
                    page.set_default_timeout(90_000)
                    page.goto(url)
                    page.get_by_role('button', name='Predict').wait_for()
                    page.get_by_label('Text').fill(text)
                    for label, f in (('Audio', wav), ('Image', png)):
                        box = page.locator('[data-testid="stFileUploader"]').filter(has_text=label)
                        box.locator('input[type=file]').set_input_files(str(f))
                        page.get_by_text(f.name).wait_for()
                    page.get_by_role('button', name='Predict').click()
                    page.get_by_text('Modality Shapley values', exact=True).wait_for()
                    page.wait_for_timeout(1500)   # the figures finish loading
                    print(f'wrote {save_screenshot(page, Path(a.out))}')
                    b.close()
            finally:
                proc.terminate()
                try: proc.wait(timeout=20)
                except subprocess.TimeoutExpired: proc.kill()


if __name__ == '__main__': main()
