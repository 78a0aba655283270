"""Every supported encoder family, end to end: train -> save -> reload -> mmsent_eval -> Predictor -> the app's page -> the
server's request path -> mmsent_export + ONNX Runtime, on small random checkpoints written with `save_pretrained` (offline).

`COMBOS` puts every family of `ENCODER_FAMILIES` in at least one run (a run has one family per slot); the support
table of the "Choosing encoders" page is made from the same list (`support_table`)."""
import base64, io, json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch

from mmsent.core import MODALITIES
from mmsent.encoders import ENCODER_FAMILIES, save_tiny_family

BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
BY_SLOT = {m: [f for f in ENCODER_FAMILIES if f.modality == m] for m in MODALITIES}
N_RUNS = max(len(v) for v in BY_SLOT.values())
COMBOS = [tuple(BY_SLOT[m][i % len(BY_SLOT[m])] for m in MODALITIES) for i in range(N_RUNS)]
STEPS = ('train', 'save', 'reload', 'mmsent_eval', 'Predictor', 'app page', 'server request', 'ONNX export')


class Page:
    "Stands in for the `streamlit` module in the app's `show_prediction`: records each call as (name, first argument)."
    def __init__(self): self.log = []
    def columns(self, n): return [self]*n
    def __enter__(self): return self
    def __exit__(self, *exc): return False
    def __getattr__(self, name):
        def call(*args, **kwargs): self.log.append((name, args[0] if args else None)); return self
        return call


def support_table()->str:
    "The docs' support table: each family, its slot, what it reads, its default pooling, LoRA targets, and the steps this file tests."
    rows = ['| slot | family | reads | pooling | LoRA targets | example checkpoint | ' + ' | '.join(STEPS) + ' |',
            '|---|---|---|---|---|---|' + '---|'*len(STEPS)]
    tested = {f.name for combo in COMBOS for f in combo}
    for f in ENCODER_FAMILIES:
        ok = 'yes' if f.name in tested else 'no'
        lora = ('query and value projections' if set(f.lora_targets) == {'query', 'value', 'q_proj', 'v_proj'}
                else ', '.join(f'`{t}`' for t in f.lora_targets))
        rows.append(f"| {f.modality} | {f.name} | {f.inputs} | {f.pooling} | {lora} | `{f.example}` | " + ' | '.join([ok]*len(STEPS)) + ' |')
    return '\n'.join(rows)


def test_every_family_is_in_a_run():
    assert {f.name for combo in COMBOS for f in combo} == {f.name for f in ENCODER_FAMILIES}
    assert 'Whisper (encoder)' in support_table() and support_table().count('\n') == len(ENCODER_FAMILIES) + 1


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    "A voice and a face on disk."
    import soundfile as sf
    from PIL import Image
    d = tmp_path_factory.mktemp('media')
    rng = np.random.default_rng(0)
    sf.write(d/'voice.wav', rng.normal(0, 0.1, 12_000).astype(np.float32), 16_000)
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(d/'face.png')
    return d


# The first two runs are run again with the CPU kernels forced elsewhere (marker `numerics`: the server's and the ONNX
# graph's probabilities are compared with the model's); the other families share their code paths.
@pytest.mark.slow
@pytest.mark.parametrize('combo', [pytest.param(c, marks=pytest.mark.numerics) if i < 2 else c for i, c in enumerate(COMBOS)],
                         ids=['+'.join(f.name.split()[0] for f in c) for c in COMBOS])
def test_family_end_to_end(combo, media, tmp_path):
    from mmsent.train import TrainConfig, train, BEST_NAME
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.evaluation import mmsent_eval
    from mmsent.predict import Predictor
    from mmsent.serve import decode_request
    from mmsent.export import export_onnx
    from mmsent.app.streamlit_app import show_prediction
    ckpt = {f.modality: save_tiny_family(f, tmp_path/'ckpt'/f.modality) for f in combo}
    video = combo[2].inputs == 'video'
    train(TrainConfig(**{f'{m}_model': str(p) for m, p in ckpt.items()}, n_frames=4 if video else 1, synth_n=60, epochs=1,
                      max_train_steps=2, batch_size=8, progress=False, output_dir=str(tmp_path/'models'), log_dir=str(tmp_path/'logs')))
    best = tmp_path/'models'/BEST_NAME
    saved = json.loads((best/'config.json').read_text())
    assert [saved[f'{m}_model'] for m in MODALITIES] == [str(ckpt[m]) for m in MODALITIES]   # config.json names the checkpoints
    card = (best/'README.md').read_text()
    assert all(f"| {m} | " in card and str(ckpt[m]) in card for m in MODALITIES), card   # and so does the model card
    assert {saved['encoder_configs'][f.modality]['model_type'] for f in combo} <= {t for f in combo for t in f.model_types}
    model = EndToEndMultiModalModel.from_pretrained(best)
    assert [model.unimodal(m).family for m in MODALITIES] == list(combo)
    mmsent_eval.__wrapped__(model=str(best), synth_n=60, out=str(tmp_path/'eval'), no_progress=True)
    metrics = json.loads((tmp_path/'eval'/'metrics.json').read_text())
    assert 0 <= metrics['fused']['accuracy'] <= 1
    pred = Predictor.from_pretrained(best, device='cpu', explain=True)   # with the Shapley values, as the app shows them
    p = pred.predict(text='what a lovely day', audio=media/'voice.wav', image=media/'face.png')
    t = p.to_dict()
    page = Page(); show_prediction(page, p)   # the app's page for this prediction
    assert [a for n, a in page.log if n == 'markdown'] == ['#### Class probabilities', '#### Each modality on its own', '#### Modality Shapley values', '#### Modality attention']
    assert [n for n, a in page.log].count('pyplot') == 3
    assert set(t['probs']) == {'negative', 'neutral', 'positive'} and abs(sum(t['probs'].values()) - 1) < 1e-5
    payload = dict(text='what a lovely day', audio=base64.b64encode((media/'voice.wav').read_bytes()).decode(),
                   image=base64.b64encode((media/'face.png').read_bytes()).decode())
    s = pred.predict_samples([decode_request(pred, payload)])[0].to_dict()
    assert max(abs(s['probs'][c] - t['probs'][c]) for c in t['probs']) <= 1e-5
    export_onnx(best, tmp_path/'onnx')
    o = Predictor.from_pretrained(tmp_path/'onnx', backend='onnxruntime', device='cpu').predict(
        text='what a lovely day', audio=media/'voice.wav', image=media/'face.png').to_dict()
    assert max(abs(o['probs'][c] - t['probs'][c]) for c in t['probs']) <= 1e-4


def test_cli_takes_any_combination_and_refuses_a_wrong_family(tmp_path):
    "mmsent_train --text_model DIR --audio_model DIR --visual_model DIR trains; a checkpoint of another slot is one line, exit 2, no output folder."
    fams = {f.name: f for f in ENCODER_FAMILIES}
    for slot, name in (('text', 'ELECTRA'), ('audio', 'WavLM'), ('visual', 'DINOv2')): save_tiny_family(fams[name], tmp_path/slot)
    exe = [str(BIN/'mmsent_train')] if (BIN/'mmsent_train').exists() else [sys.executable, '-c', 'from mmsent.train import mmsent_train; mmsent_train()']
    common = ['--synth_n', '60', '--epochs', '1', '--max_train_steps', '1', '--batch_size', '8', '--no_progress']
    r = subprocess.run([*exe, '--text_model', 'text', '--audio_model', 'audio', '--visual_model', 'visual', *common,
                        '--output_dir', 'ok', '--log_dir', 'ok_logs'], cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path/'ok'/'end_to_end_multimodal_best'/'config.json').is_file()
    r = subprocess.run([*exe, '--audio_model', 'visual', *common, '--output_dir', 'bad', '--log_dir', 'bad_logs'],
                       cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 2
    err = [l for l in r.stderr.splitlines() if 'error' in l]
    assert len(err) == 1 and 'a DINOv2 checkpoint (a visual encoder) is not a supported audio encoder' in err[0], r.stderr
    assert 'Traceback' not in r.stderr and not (tmp_path/'bad').exists() and not (tmp_path/'bad_logs').exists()


def test_modality_subset(tmp_path):
    "--modalities text,audio trains a model without a visual encoder; its processor and predictor take text and audio only."
    from mmsent.train import TrainConfig, train, BEST_NAME
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.core import ConfigError
    train(TrainConfig(modalities='text,audio', synth_n=60, epochs=1, max_train_steps=2, batch_size=8, progress=False,
                      output_dir=str(tmp_path/'models'), log_dir=str(tmp_path/'logs')))
    model = EndToEndMultiModalModel.from_pretrained(tmp_path/'models'/BEST_NAME)
    assert model.modalities == ('text', 'audio') and model.visual_model is None
    with pytest.raises(ConfigError, match='visual_model is given but visual is not in --modalities'):
        TrainConfig(modalities='text,audio', visual_model='x')
    with pytest.raises(ConfigError, match='modalities must be a non-empty subset'): TrainConfig(modalities='text,smell')
    save_tiny_family(next(f for f in ENCODER_FAMILIES if f.name == 'VideoMAE'), tmp_path/'videomae')
    with pytest.raises(ConfigError, match=r'n_frames must be 4 for the VideoMAE encoder .* \(its num_frames\), got 2'):
        TrainConfig(visual_model=str(tmp_path/'videomae'), n_frames=2)


@pytest.mark.parametrize('parser', ['mmsent.train:train_parser', 'mmsent.pretrain:pretrain_parser', 'mmsent.tune:tune_parser',
                                    'mmsent.compress:distill_parser'])
def test_every_command_takes_the_encoder_options(parser):
    "mmsent_train, mmsent_pretrain, mmsent_tune and mmsent_distill (for its student) all take --text_model, --audio_model, --visual_model, --modalities."
    import importlib
    mod, fn = parser.split(':')
    help_text = getattr(importlib.import_module(mod), fn)().format_help()
    for opt in ('--text_model', '--audio_model', '--visual_model', '--modalities', '--pooling'): assert opt in help_text, (parser, opt)
    if 'pretrain' not in parser: assert '--lora_r' in help_text, parser


def test_a_model_without_a_slot_predicts_and_refuses_that_input(tmp_path):
    "A text+audio model: Predictor, the server's request path and a video (its sound only); an image is refused in one line naming it."
    import soundfile as sf
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.encoders import MultiModalProcessor
    from mmsent.predict import Predictor
    from mmsent.serve import decode_request, RequestError
    from mmsent.data import write_test_mp4
    torch.manual_seed(0)
    EndToEndMultiModalModel.from_preset('tiny', modalities=('text', 'audio')).save_pretrained(tmp_path/'m', processor=MultiModalProcessor.from_pretrained('tiny'))
    rng = np.random.default_rng(0)
    sf.write(tmp_path/'v.wav', rng.normal(0, 0.1, 12_000).astype(np.float32), 16_000)
    write_test_mp4(tmp_path/'clip.mp4', rng.normal(0, 0.1, 16_000).astype(np.float32), frames=[np.zeros((32, 32, 3), np.uint8)]*4, fps=4)
    pred = Predictor.from_pretrained(tmp_path/'m', device='cpu')
    p = pred.predict(text='fine', audio=tmp_path/'v.wav').to_dict()
    assert p['modalities'] == ['text', 'audio']
    assert pred.predict(video=tmp_path/'clip.mp4').to_dict()['modalities'] == ['audio']
    with pytest.raises(ValueError, match='this model has no visual encoder .*: leave out the image'): pred.predict(text='fine', image=tmp_path/'v.wav')
    with pytest.raises(RequestError, match='no visual encoder'):
        decode_request(pred, dict(text='fine', image=base64.b64encode(b'\x89PNG....').decode()))


@pytest.mark.slow
def test_server_answers_for_other_families(media, tmp_path):
    "mmsent_serve on a model of DeBERTa, Whisper and VideoMAE encoders answers a JSON request over HTTP (loopback)."
    import httpx
    from mmsent.model import EndToEndMultiModalModel, ModelConfig
    from mmsent.encoders import MultiModalProcessor
    from mmsent.serve import running_server
    fams = {f.name: f for f in ENCODER_FAMILIES}
    ckpt = {m: save_tiny_family(fams[n], tmp_path/m) for m, n in (('text', 'DeBERTa-v2/v3'), ('audio', 'Whisper (encoder)'), ('visual', 'VideoMAE'))}
    torch.manual_seed(0)
    model = EndToEndMultiModalModel(ModelConfig(preset='tiny', **{f'{m}_model': str(p) for m, p in ckpt.items()}))
    model.save_pretrained(tmp_path/'model', processor=MultiModalProcessor.from_encoders(**{m: str(p) for m, p in ckpt.items()}, n_frames=4))
    payload = dict(text='what a lovely day', audio=base64.b64encode((media/'voice.wav').read_bytes()).decode(),
                   image=base64.b64encode((media/'face.png').read_bytes()).decode())
    with running_server(tmp_path/'model') as url:
        r = httpx.post(url + '/predict', json=payload, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()['modalities'] == ['text', 'audio', 'visual'] and set(r.json()['probs']) == {'negative', 'neutral', 'positive'}
