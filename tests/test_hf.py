"Hugging Face integration: Auto classes, the Hub (offline, with a fake upload and a fake cache), old directories, config errors, the model card."
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_model
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoProcessor

from mmsent.core import assert_close
from mmsent.encoders import ASSETS, MultiModalProcessor, sha256_file
from mmsent.model import CONFIG_NAME, WEIGHTS_NAME, EndToEndMultiModalModel, ModelConfig, ModelLoadError

TEXTS = ['a good film', 'not bad at all']

@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp('hf')
    model = EndToEndMultiModalModel.from_preset('tiny', fusion='attention').eval()
    proc = MultiModalProcessor.from_pretrained('tiny')
    extra = dict(epoch=4, metrics=dict(val_accuracy=0.61, val_weighted_f1=0.58, val_loss=0.93),
                 training=dict(lr=3e-5, epochs=5, batch_size=8), command='mmsent_train --preset tiny --epochs 5',
                 data=dict(dataset='synth', data_root='/data/synth', splits={'train': 120, 'val': 30}))
    model.save_pretrained(d/'m', processor=proc, extra=extra)
    return d, model, proc

def inputs(proc): return proc(text=TEXTS, audio=[torch.zeros(1600).numpy()]*2, image=[None, None])

FRESH = """
import sys, mmsent
assert not {'torch', 'transformers', 'mmsent.model'} & set(sys.modules), 'import mmsent imported the modelling code'
import transformers
cls = getattr(transformers, sys.argv[1])
print(type(cls.from_pretrained(sys.argv[2])).__name__)
"""

@pytest.mark.parametrize('auto, loaded', [('AutoConfig', 'ModelConfig'), ('AutoModel', 'EndToEndMultiModalModel'),
                                          ('AutoModelForSequenceClassification', 'EndToEndMultiModalModel'), ('AutoProcessor', 'MultiModalProcessor')])
def test_auto_classes_in_a_fresh_process(saved, auto, loaded):
    "`import mmsent` imports neither torch nor transformers, and each Auto class still loads a saved folder (mmsent registers when it is asked for)."
    d, _, _ = saved
    r = subprocess.run([sys.executable, '-c', FRESH, auto, str(d/'m')], capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE='1'))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == [loaded]

def test_lazy_submodules():
    r = subprocess.run([sys.executable, '-c', 'import mmsent; print(mmsent.core.LABELS); mmsent.no_such_module'], capture_output=True, text=True, timeout=120)
    assert "('negative', 'neutral', 'positive')" in r.stdout and "module 'mmsent' has no attribute 'no_such_module'" in r.stderr

@pytest.mark.numerics
def test_auto_classes_load_the_same_model(saved):
    d, model, proc = saved
    cfg = AutoConfig.from_pretrained(d/'m')
    assert type(cfg) is ModelConfig and cfg.fusion.kind == 'attention' and cfg.model_type == 'mmsent'
    auto, own = AutoModel.from_pretrained(d/'m'), EndToEndMultiModalModel.from_pretrained(d/'m')
    assert type(auto) is EndToEndMultiModalModel and type(AutoModelForSequenceClassification.from_pretrained(d/'m')) is EndToEndMultiModalModel
    p = AutoProcessor.from_pretrained(d/'m')
    assert type(p) is MultiModalProcessor and p.config == proc.config
    x = inputs(p)
    with torch.no_grad(): assert_close(auto(**x), model(**x)); assert_close(own(**x), model(**x))   # reloaded copies: within rounding

def test_checksums_file_is_sha256sum_format(saved):
    d, *_ = saved
    lines = (d/'m'/'checksums.sha256').read_text().splitlines()
    listed = {l.split('  ', 1)[1] for l in lines}
    assert {'config.json', 'model.safetensors', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json'} <= listed
    for l in lines:
        digest, rel = l.split('  ', 1)
        assert sha256_file(d/'m'/rel) == digest
    if shutil.which('sha256sum'):
        import subprocess
        assert subprocess.run(['sha256sum', '-c', '--quiet', 'checksums.sha256'], cwd=d/'m').returncode == 0

@pytest.mark.parametrize('modality,key,value', [('text', 'hidden_act', 'relu'), ('visual', 'layer_norm_eps', 1e-3)])
def test_edited_encoder_config_is_refused(saved, tmp_path, modality, key, value):
    d, *_ = saved
    e = tmp_path/'e'; shutil.copytree(d/'m', e)
    cfg = json.loads((e/CONFIG_NAME).read_text()); cfg['encoder_configs'][modality][key] = value
    (e/CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match='config.json does not match its SHA-256') as err: EndToEndMultiModalModel.from_pretrained(e)
    assert '\n' not in str(err.value)
    with pytest.raises(ModelLoadError): AutoModel.from_pretrained(e)
    m = EndToEndMultiModalModel.from_pretrained(e, verify=False)   # at your own risk: the edit takes effect
    assert getattr(m.unimodal(modality).encoder.config, key) == value

@pytest.mark.parametrize('edit,msg', [(lambda c: [c], 'must hold a JSON object, got a list'),
                                      (lambda c: c['fusion'].update(n_heads='four'), "fusion.n_heads must be int, got 'four'"),
                                      (lambda c: c.update(num_classes='3'), 'num_classes must be int'),
                                      (lambda c: c.update(head_dropout=-0.5), 'head_dropout must be in'),
                                      (lambda c: c.update(prior=['a', 'b', 'c']), 'prior must be a list of numbers')])
def test_wrong_config_values_are_named(saved, tmp_path, edit, msg):
    d, *_ = saved
    e = tmp_path/'e'; shutil.copytree(d/'m', e)
    cfg = json.loads((e/CONFIG_NAME).read_text()); cfg = edit(cfg) or cfg
    (e/CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError) as err: EndToEndMultiModalModel.from_pretrained(e, verify=False)
    assert str(err.value).startswith(str(e/CONFIG_NAME)) and msg in str(err.value) and '\n' not in str(err.value)

def save_v0(model, d):
    "A directory as the previous release wrote it: config.json with architecture, weights_sha256 and config; processor in sub-folders."
    shutil.copytree(ASSETS/'tiny-processor', d); save_model(model, str(d/WEIGHTS_NAME))
    hf = set(ModelConfig.__mro__[1].__dataclass_fields__)
    cfg = {k: v for k, v in model.config.to_dict().items() if k in ModelConfig.__dataclass_fields__ and k not in hf}
    cfg['encoder_configs'] = {m: model.unimodal(m).encoder.config.to_dict() for m in model.modalities}
    (d/CONFIG_NAME).write_text(json.dumps(dict(architecture='EndToEndMultiModalModel', mmsent_version='0.1.0',
                                               weights_sha256=sha256_file(d/WEIGHTS_NAME), config=cfg, epoch=1, metrics={'val_accuracy': 0.4})))
    return d

@pytest.mark.numerics
def test_old_directory_loads_and_resaves(saved, tmp_path):
    _, model, proc = saved
    old = save_v0(model, tmp_path/'old')
    m, p = EndToEndMultiModalModel.from_pretrained(old), MultiModalProcessor.from_pretrained(old)
    x = inputs(p)
    with torch.no_grad(): assert_close(m(**x), model(**x))
    assert m.config.run_info['epoch'] == 1
    m.save_pretrained(tmp_path/'new', processor=p, extra=m.config.run_info)
    assert json.loads((tmp_path/'new'/CONFIG_NAME).read_text())['model_type'] == 'mmsent'
    with torch.no_grad(): assert_close(AutoModel.from_pretrained(tmp_path/'new')(**x), model(**x))

def test_preset_wins_over_an_unrelated_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path); (tmp_path/'tiny').mkdir()
    assert MultiModalProcessor.from_pretrained('tiny').tokenizer is not None
    assert EndToEndMultiModalModel.from_preset('tiny').config.preset == 'tiny'
    with pytest.raises(ModelLoadError, match='tiny is not a model directory: config.json is missing'): EndToEndMultiModalModel.from_pretrained('tiny')

def test_model_card_names_the_run(saved):
    d, *_ = saved
    card = (d/'m'/'README.md').read_text()
    assert card.startswith('---\n') and 'library_name: mmsent' in card and 'model-index' in card
    for s in ('val_accuracy', '0.61', 'val_weighted_f1', 'mmsent_train --preset tiny --epochs 5', 'synth', "'train': 120", 'Intended use', 'Epoch 4'):
        assert s in card, s
    from huggingface_hub import ModelCard
    assert ModelCard(card).data.library_name == 'mmsent'

def test_model_card_without_run_information(tmp_path):
    m = EndToEndMultiModalModel.from_preset('tiny', modalities=('text',), task='regression')
    m.save_pretrained(tmp_path/'m')
    card = (tmp_path/'m'/'README.md').read_text()
    assert 'No metrics were recorded' in card and 'pipeline_tag: text-classification' in card and 'model-index' not in card

def test_push_to_hub_uploads_the_saved_folder(saved, monkeypatch):
    import huggingface_hub
    _, model, proc = saved
    calls = {}
    class Repo:
        repo_id = 'someone/mmsent-tiny'
    monkeypatch.setattr(huggingface_hub.HfApi, 'create_repo', lambda self, repo_id, **kw: calls.setdefault('create', (repo_id, kw)) and Repo())
    def upload_folder(self, repo_id, folder_path, **kw):
        calls.setdefault('uploads', []).append((repo_id, sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob('*') if p.is_file()),
                                                json.loads((Path(folder_path)/'processor_config.json').read_text()) if (Path(folder_path)/'processor_config.json').exists() else None,
                                                (Path(folder_path)/CONFIG_NAME).read_text() if (Path(folder_path)/CONFIG_NAME).exists() else None))
        return 'https://huggingface.co/someone/mmsent-tiny/commit/0'
    monkeypatch.setattr(huggingface_hub.HfApi, 'upload_folder', upload_folder)
    model.push_to_hub('someone/mmsent-tiny', processor=proc, extra=dict(metrics={'val_accuracy': 0.5}))
    repo, files, pcfg, cfg = calls['uploads'][0]
    assert repo == 'someone/mmsent-tiny'
    assert {'README.md', 'checksums.sha256', 'config.json', 'model.safetensors', 'processor_config.json', 'tokenizer.json'} <= set(files)
    assert json.loads(cfg)['model_type'] == 'mmsent' and json.loads(cfg)['metrics'] == {'val_accuracy': 0.5}
    proc.push_to_hub('someone/mmsent-tiny')
    repo, files, pcfg, _ = calls['uploads'][1]
    assert 'processor_config.json' in files and 'checksums.sha256' in files and pcfg['processor_class'] == 'MultiModalProcessor'

@pytest.mark.numerics
def test_load_by_hub_id_from_the_cache(saved, tmp_path, monkeypatch):
    "A fake Hugging Face cache: models--user--repo/refs/main and snapshots/<commit>/ (what snapshot_download leaves behind)."
    d, model, proc = saved
    commit = '0123456789abcdef0123456789abcdef01234567'
    repo = tmp_path/'cache'/'models--someone--mmsent-tiny'
    shutil.copytree(d/'m', repo/'snapshots'/commit); (repo/'refs').mkdir(); (repo/'refs'/'main').write_text(commit)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    m = EndToEndMultiModalModel.from_pretrained('someone/mmsent-tiny', cache_dir=tmp_path/'cache')
    p = MultiModalProcessor.from_pretrained('someone/mmsent-tiny', cache_dir=tmp_path/'cache')
    a = AutoModel.from_pretrained('someone/mmsent-tiny', cache_dir=tmp_path/'cache')
    x = inputs(p)
    with torch.no_grad(): assert_close(m(**x), model(**x)); assert_close(a(**x), model(**x))
    with pytest.raises(ModelLoadError, match='not a local model directory'):
        EndToEndMultiModalModel.from_pretrained('someone/not-there', cache_dir=tmp_path/'cache')

def test_hf_machinery_keeps_pretrained_weights(saved):
    _, model, _ = saved
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.init_weights(); model.tie_weights()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.gradient_checkpointing_enable()
    assert all(model.unimodal(m).gradient_checkpointing for m in model.modalities)
    model.gradient_checkpointing_disable()
    assert model.config.return_dict is True and model.config._attn_implementation is not None

def test_convert_command(saved, tmp_path):
    import subprocess, sys
    _, model, _ = saved
    old = save_v0(model, tmp_path/'old')
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    r = subprocess.run(['mmsent_convert', str(old)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((old/CONFIG_NAME).read_text())['model_type'] == 'mmsent' and (old/'checksums.sha256').is_file()
    r = subprocess.run(['mmsent_convert', str(tmp_path/'nothing')], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and r.stderr.strip().startswith('mmsent_convert: error:') and len(r.stderr.strip().splitlines()) == 1 and 'Traceback' not in r.stderr


@pytest.mark.slow
def test_a_model_trained_by_mmsent_train(tmp_path):
    "mmsent_train's best model: a process that imports only mmsent and transformers opens it with the Auto classes (same logits as EndToEndMultiModalModel); its card names the run's metrics."
    env = dict(os.environ, HF_HUB_OFFLINE='1', MMSENT_CACHE=str(tmp_path/'cache'), OMP_NUM_THREADS='1')
    run = lambda *a: subprocess.run(list(a), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    r = run('mmsent_synth', '--out', 'data', '--n', '150', '--seed', '0')
    assert r.returncode == 0, r.stderr[-2000:]
    r = run('mmsent_train', '--data_root', 'data', '--epochs', '1', '--batch_size', '16', '--max_audio_seconds', '2', '--no_progress',
            '--output_dir', 'o', '--log_dir', 'l')
    assert r.returncode == 0, r.stderr[-2000:]
    best = tmp_path/'o'/'end_to_end_multimodal_best'
    code = ("import sys, torch, mmsent\nfrom transformers import AutoConfig, AutoModel, AutoProcessor\n"
            "d = sys.argv[1]; cfg, m, p = AutoConfig.from_pretrained(d), AutoModel.from_pretrained(d), AutoProcessor.from_pretrained(d)\n"
            "from mmsent.model import EndToEndMultiModalModel\nfrom mmsent.core import all_close\nown = EndToEndMultiModalModel.from_pretrained(d)\n"
            "x = p(text=['a good film'], audio=[torch.zeros(1600).numpy()], image=[None])\n"
            "with torch.no_grad(): print(type(cfg).__name__, type(m).__name__, type(p).__name__, all_close(m(**x), own(**x)))")
    r = run(sys.executable, '-c', code, str(best))
    assert r.stdout.split() == ['ModelConfig', 'EndToEndMultiModalModel', 'MultiModalProcessor', 'True'], r.stderr[-2000:]
    hist = json.loads((tmp_path/'o'/'training_history_end_to_end.json').read_text())
    card = (best/'README.md').read_text()
    acc = hist['epochs'][0]['val_accuracy']
    assert f"| val_accuracy | {acc:.4g} |" in card and 'mmsent_train' in card and 'library_name: mmsent' in card, card[:3000]
