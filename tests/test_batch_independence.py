"A sample's fused logits alone and inside a batch agree, with a group-norm Wav2Vec2 (the base preset's layout) as the audio encoder."
import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config

from mmsent.encoders import MultiModalProcessor, tiny_config
from mmsent.model import EndToEndMultiModalModel, ModelConfig

SR = 16_000


@pytest.fixture(scope='module')
def group_audio_dir(tmp_path_factory):
    "A small Wav2Vec2 with group norm and a post-norm transformer (wav2vec2-base-960h's layout), written with save_pretrained."
    from transformers import AutoModel
    t = tiny_config('audio')
    cfg = Wav2Vec2Config(**{k: getattr(t, k) for k in ('hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'conv_dim',
                                                     'conv_stride', 'conv_kernel', 'num_conv_pos_embeddings', 'num_conv_pos_embedding_groups')},
                         feat_extract_norm='group', do_stable_layer_norm=False, mask_time_prob=0.0, vocab_size=32)
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp('group_audio')
    AutoModel.from_config(cfg).save_pretrained(d)
    return d


def samples():
    "Two samples: a 1 s clip with a short text, a 5 s clip with a longer one; one image each."
    from PIL import Image
    rng = np.random.default_rng(0)
    audio = [rng.normal(0, 0.1, SR).astype(np.float32), rng.normal(0, 0.3, 5*SR).astype(np.float32)]
    text = ["fine", "this was a long and rather disappointing film overall"]
    image = [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(2)]
    return text, audio, image


@pytest.mark.numerics
@pytest.mark.parametrize('fusion', ['attention', 'crossmodal', 'concat'])
def test_alone_vs_batched(group_audio_dir, fusion):
    torch.manual_seed(0)
    model = EndToEndMultiModalModel(ModelConfig(preset='tiny', audio_model=str(group_audio_dir), fusion=fusion)).eval()
    assert model.audio_model.encoder.config.feat_extract_norm == 'group'
    proc = MultiModalProcessor.from_pretrained('tiny')
    text, audio, image = samples()
    batch, alone = proc(text=text, audio=audio, image=image), proc(text=text[:1], audio=audio[:1], image=image[:1])
    assert batch['audio_inputs'].shape == (2, 5*SR) and batch['audio_attention_mask'][0].sum() == SR   # the 1 s clip is padded
    with torch.no_grad():
        b, a = model(**batch, return_dict=True), model(**alone, return_dict=True)
        torch.testing.assert_close(b.logits[:1], a.logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(b.unimodal_logits['audio'][:1], a.unimodal_logits['audio'], atol=1e-5, rtol=0)
        # the 5 s clip, which has no padding, is unchanged too
        b2 = model(**proc(text=text[1:], audio=audio[1:], image=image[1:]))
        torch.testing.assert_close(b.logits[1:], b2, atol=1e-5, rtol=0)


def test_old_path_differs(group_audio_dir, monkeypatch):
    "The check above can fail: mmsent's old path (the padded batch through the encoder unmasked) moves the short clip's logits."
    from mmsent.encoders import AudioSentimentModel
    def old(self, x, mask):
        h = self.encoder(x).last_hidden_state
        return h, self.frame_mask(mask, h.shape[1])
    monkeypatch.setattr(AudioSentimentModel, '_encode_clips', old)
    torch.manual_seed(0)
    model = EndToEndMultiModalModel(ModelConfig(preset='tiny', audio_model=str(group_audio_dir))).eval()
    proc = MultiModalProcessor.from_pretrained('tiny')
    text, audio, image = samples()
    with torch.no_grad():
        a = model(**proc(text=text[:1], audio=audio[:1], image=image[:1]))
        b = model(**proc(text=text, audio=audio, image=image))
    assert (b[:1] - a).abs().max() > 1e-3
