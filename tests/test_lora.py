"""LoRA fine-tuning (`--lora_r`) as a user runs it: what trains, the saved adapters, merged predictions and export, exact resume,
--init_from, gradual unfreezing and a distilled student."""
import json
from pathlib import Path
import numpy as np
import pytest
import torch

pytest.importorskip('peft')
FAST = dict(batch_size=8, max_audio_seconds=2.0, progress=False)


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    from mmsent.synth import synthesize
    d = tmp_path_factory.mktemp('synth')
    synthesize(d, n=100, seed=3)
    return d


@pytest.fixture(scope='module')
def lora_run(synth, tmp_path_factory):
    "Two epochs with LoRA r=4 on the tiny preset, a checkpoint each epoch."
    from mmsent.train import TrainConfig, train
    d = tmp_path_factory.mktemp('lora')
    train(TrainConfig(data_root=str(synth), epochs=2, save_every=1, lora_r=4, output_dir=str(d/'a'), log_dir=str(d/'a'/'logs'), **FAST))
    return d


def test_only_adapters_fusion_and_heads_train(lora_run):
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.train import TrainConfig, make_optimizer
    m = EndToEndMultiModalModel.from_pretrained(lora_run/'a'/'end_to_end_multimodal_best')
    assert m.config.lora == dict(r=4, alpha=None, dropout=0.05, targets=None)
    for mod in ('text', 'audio', 'visual'):
        enc = m.unimodal(mod).encoder
        assert {n for n, p in enc.named_parameters() if p.requires_grad} == {n for n, _ in enc.named_parameters() if 'lora_' in n}
    assert not any('lora_' in n for n in (p_name for p_name, _ in m.fusion.named_parameters()))
    pre = {id(p) for p in m.pretrained_parameters()}
    assert all(id(p) not in pre for n, p in m.named_parameters() if 'lora_' in n)   # adapters learn at the new layers' rate


def test_saved_adapters_merge_to_the_same_predictions_and_export(lora_run, tmp_path):
    "Predictor merges the adapters (no lora_ parameters left) and predicts as the unmerged model (1e-5); the ONNX export as well (1e-4)."
    import soundfile as sf
    from PIL import Image
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.encoders import MultiModalProcessor
    from mmsent.predict import Predictor
    from mmsent.export import export_onnx
    best = lora_run/'a'/'end_to_end_multimodal_best'
    rng = np.random.default_rng(0)
    sf.write(tmp_path/'v.wav', rng.normal(0, 0.1, 12_000).astype(np.float32), 16_000)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path/'f.png')
    proc = MultiModalProcessor.from_pretrained(best)
    batch = proc(text=['so good', 'awful'], audio=[tmp_path/'v.wav']*2, image=[tmp_path/'f.png']*2)
    unmerged = EndToEndMultiModalModel.from_pretrained(best)
    assert any('lora_' in n for n, _ in unmerged.named_parameters())
    with torch.no_grad(): a = unmerged(**batch)
    pred = Predictor.from_pretrained(best, device='cpu')
    assert pred.model.config.lora is None and not any('lora_' in n for n, _ in pred.model.named_parameters())
    with torch.no_grad(): b = pred.model(**batch)
    assert (a - b).abs().max() <= 1e-5
    t = pred.predict(text='so good', audio=tmp_path/'v.wav', image=tmp_path/'f.png').to_dict()
    export_onnx(best, tmp_path/'onnx')
    o = Predictor.from_pretrained(tmp_path/'onnx', backend='onnxruntime', device='cpu').predict(
        text='so good', audio=tmp_path/'v.wav', image=tmp_path/'f.png').to_dict()
    assert max(abs(o['probs'][c] - t['probs'][c]) for c in t['probs']) <= 1e-4


@pytest.mark.numerics
def test_resume_with_lora_is_exact(synth, lora_run, tmp_path):
    "Resuming the LoRA run after epoch 1 ends with the uninterrupted run's weights, bit for bit (same process layout and kernels)."
    import shutil
    from safetensors.torch import load_file
    from mmsent.train import TrainConfig, train
    shutil.copytree(lora_run/'a', tmp_path/'b', ignore=shutil.ignore_patterns('end_to_end_multimodal_epoch_2', 'end_to_end_multimodal_best'))
    train(TrainConfig(resume=str(tmp_path/'b'/'end_to_end_multimodal_epoch_1'), output_dir=str(tmp_path/'b'), progress=False))
    wa = load_file(str(lora_run/'a'/'end_to_end_multimodal_epoch_2'/'model.safetensors'))
    wb = load_file(str(tmp_path/'b'/'end_to_end_multimodal_epoch_2'/'model.safetensors'))
    assert wa.keys() == wb.keys() and any('lora_' in k for k in wa) and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.numerics
def test_lora_in_bf16_holds_frozen_weights_in_bf16_saves_float32_and_resumes(synth, tmp_path):
    """Under --precision bf16 the frozen base weights are held in bf16 while training; every saved model and the returned one are
    float32; a resumed run ends bit for bit where an uninterrupted one does. Exact by construction, on the same kernels: the saved
    float32 values are the bf16 values widened, so the resumed run's bf16 weights are the same numbers, and in both runs they are
    made by PyTorch's allocator (`frozen_weights_to`), as `aligned_copy` makes every other restored tensor."""
    import os, shutil, subprocess, sys
    from safetensors.torch import load_file
    child = f"""import json, torch
from mmsent.train import TrainConfig, train
kw = dict(data_root={str(synth)!r}, epochs=2, save_every=1, lora_r=4, precision='bf16', batch_size=8, max_audio_seconds=2.0, progress=False)
r = train(TrainConfig(output_dir={str(tmp_path/'a')!r}, log_dir={str(tmp_path/'a'/'logs')!r}, **kw))
print(json.dumps(sorted({{str(p.dtype) for p in r['model'].parameters()}})))"""   # in a process of its own: Accelerate fixes the precision once per process
    r = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == '["torch.float32"]'
    assert "frozen linear weights are held in bf16" in (tmp_path/'a'/'logs'/'training_end_to_end.log').read_text()
    for d in ('end_to_end_multimodal_best', 'end_to_end_multimodal_epoch_1', 'end_to_end_multimodal_epoch_2'):
        assert {t.dtype for t in load_file(str(tmp_path/'a'/d/'model.safetensors')).values() if t.is_floating_point()} == {torch.float32}, d
    shutil.copytree(tmp_path/'a', tmp_path/'b', ignore=shutil.ignore_patterns('end_to_end_multimodal_epoch_2', 'end_to_end_multimodal_best'))
    r = subprocess.run([str(Path(sys.executable).parent/'mmsent_train'), '--resume', str(tmp_path/'b'/'end_to_end_multimodal_epoch_1'), '--output_dir', str(tmp_path/'b'),
                        '--no_progress'], capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-2000:]
    wa = load_file(str(tmp_path/'a'/'end_to_end_multimodal_epoch_2'/'model.safetensors'))
    wb = load_file(str(tmp_path/'b'/'end_to_end_multimodal_epoch_2'/'model.safetensors'))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_init_from_unfreezing_and_distillation_with_lora(synth, lora_run, tmp_path):
    "--init_from puts a saved model's encoders under fresh adapters; --freeze with --unfreeze_epoch opens the adapters only; a LoRA student distils."
    from safetensors.torch import load_file
    from mmsent.model import EndToEndMultiModalModel
    from mmsent.train import TrainConfig, train, load_encoders
    src = lora_run/'a'/'end_to_end_multimodal_best'
    plain = tmp_path/'plain'
    train(TrainConfig(data_root=str(synth), epochs=1, output_dir=str(plain), log_dir=str(plain/'logs'), max_train_steps=2, **FAST))
    m = load_encoders(EndToEndMultiModalModel(TrainConfig(lora_r=2).model_config()), plain/'end_to_end_multimodal_best')
    saved = load_file(str(plain/'end_to_end_multimodal_best'/'model.safetensors'))
    q = 'text_model.encoder.encoder.layer.0.attention.self.query'
    assert torch.equal(m.state_dict()[f'{q}.base_layer.weight'], saved[f'{q}.weight'])
    train(TrainConfig(data_root=str(synth), epochs=2, freeze=True, unfreeze_epoch=2, unfreeze_top_k=1, lora_r=2,
                      output_dir=str(tmp_path/'u'), log_dir=str(tmp_path/'u'/'logs'), **FAST))
    hist = json.loads((tmp_path/'u'/'training_history_end_to_end.json').read_text())['epochs']
    assert [e['epoch'] for e in hist] == [1, 2]
    train(TrainConfig(data_root=str(synth), epochs=1, teacher=str(src), lora_r=2, max_train_steps=2,
                      output_dir=str(tmp_path/'s'), log_dir=str(tmp_path/'s'/'logs'), **FAST))
    assert EndToEndMultiModalModel.from_pretrained(tmp_path/'s'/'end_to_end_multimodal_best').config.lora['r'] == 2


def test_lora_options_are_checked():
    from mmsent.train import TrainConfig
    from mmsent.core import ConfigError
    with pytest.raises(ConfigError, match='lora_alpha needs --lora_r'): TrainConfig(lora_alpha=8.0)
    with pytest.raises(ConfigError, match='lora_r must be >= 1'): TrainConfig(lora_r=0)
    with pytest.raises(ValueError, match=r"LoRA targets \['nope'\] do not name modules"):
        from mmsent.model import EndToEndMultiModalModel
        EndToEndMultiModalModel(TrainConfig(lora_r=2, lora_targets='nope').model_config())
