"""`mmsent_train --compile`'s pieces: shape buckets leave the model's outputs unchanged, and the training step is one graph.

The one-graph tests compile with AOTAutograd's eager backend (Dynamo's trace of the forward, AOTAutograd's of the backward).
With MMSENT_TEST_INDUCTOR=1 they also compile with Inductor, the backend `mmsent_train --compile` uses: its C++ code generation
takes about 80 s for the tiny step on 2 cores (Intel Xeon), which CI's time cannot hold."""
import os

import numpy as np
import pytest
import torch

from mmsent.datasets import pad_to_buckets
from mmsent.encoders import MultiModalProcessor
from mmsent.model import EndToEndMultiModalModel

BACKENDS = ['aot_eager', pytest.param('inductor', marks=pytest.mark.skipif(
    os.environ.get('MMSENT_TEST_INDUCTOR') != '1', reason="Inductor's code generation takes minutes on 2 cores: set MMSENT_TEST_INDUCTOR=1"))]


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    proc = MultiModalProcessor.from_pretrained('tiny', max_audio_seconds=4.0)
    rng = np.random.default_rng(0)
    from PIL import Image
    batch = proc(text=['what a film', 'not my kind of story at all, sadly', None],
                 audio=[rng.normal(0, .1, 11_000).astype(np.float32), None, rng.normal(0, .1, 23_000).astype(np.float32)],
                 image=[Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)), None, None])
    return EndToEndMultiModalModel.from_preset('tiny'), proc, batch


def test_buckets_leave_the_outputs_unchanged(tiny):
    model, proc, batch = tiny
    padded = pad_to_buckets(batch, proc)
    assert padded['text_inputs'].shape[1] > batch['text_inputs'].shape[1] and padded['audio_inputs'].shape[1] == 32_000
    with torch.no_grad():
        a, b = model.eval()(**batch, return_dict=True), model(**padded, return_dict=True)
    torch.testing.assert_close(b.logits, a.logits, atol=1e-5, rtol=0)
    for m in ('text', 'audio', 'visual'): torch.testing.assert_close(b.unimodal_logits[m], a.unimodal_logits[m], atol=1e-5, rtol=0, equal_nan=True)


@pytest.mark.parametrize('backend', BACKENDS)
def test_the_tiny_training_step_is_one_graph(tiny, backend):
    "The training forward (modality dropout, auxiliary heads, the single-modality fusion loss) has no graph break, and its backward traces too."
    model, proc, batch = tiny
    model.train()
    padded, y = dict(pad_to_buckets(batch, proc)), torch.tensor([0, 1, 2])
    explained = torch._dynamo.explain(model)(**padded, labels=y, return_dict=True)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), [str(b.reason)[:200] for b in explained.break_reasons]
    model(**padded, labels=y, return_dict=True).loss.backward()
    eager = {n for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True); torch._dynamo.reset()
    step = torch.compile(model, fullgraph=True, dynamic=False, backend=backend)
    out = step(**padded, labels=y, return_dict=True)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert torch.isfinite(out.loss) and set(grads) == eager and all(torch.isfinite(g).all() for g in grads.values())
    model.zero_grad(); torch._dynamo.reset()


@pytest.mark.parametrize('backend', BACKENDS)
def test_the_base_layout_training_step_is_one_graph(backend):
    "The base preset's layout (Wav2Vec2-base: group norm, post-norm transformer, SpecAugment on) at small sizes: one graph, SpecAugment drawn in it."
    from transformers import RobertaConfig, ViTConfig, Wav2Vec2Config
    from mmsent.encoders import tiny_config
    from mmsent.model import ModelConfig
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    conv = {k: getattr(tiny_config('audio'), k) for k in ('conv_dim', 'conv_stride', 'conv_kernel', 'num_conv_pos_embeddings', 'num_conv_pos_embedding_groups')}
    audio = Wav2Vec2Config(**small, **conv, vocab_size=32, feat_extract_norm='group', do_stable_layer_norm=False, mask_time_prob=0.3, mask_time_length=2,
                           mask_feature_prob=0.2, mask_feature_length=4)
    configs = dict(text=tiny_config('text'), audio=audio, visual=ViTConfig(image_size=64, patch_size=8, **small))
    torch.manual_seed(0)
    model = EndToEndMultiModalModel(ModelConfig(preset='base', encoder_configs={m: c.to_dict() for m, c in configs.items()})).train()
    assert model.audio_model.encoder.config.mask_time_prob == 0.3
    proc = MultiModalProcessor.from_pretrained('tiny', max_audio_seconds=4.0)
    rng = np.random.default_rng(1)
    from PIL import Image
    batch = proc(text=['fine', 'a longer sentence than the first', None, 'ok'],
                 audio=[rng.normal(0, .1, n).astype(np.float32) if n else None for n in (9_000, 30_000, 16_000, None)],
                 image=[Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)), None, None, None])
    padded, y = dict(pad_to_buckets(batch, proc)), torch.tensor([0, 1, 2, 1])
    explained = torch._dynamo.explain(model)(**padded, labels=y, return_dict=True)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), [str(b.reason)[:200] for b in explained.break_reasons]
    torch._dynamo.reset()
    step = torch.compile(model, fullgraph=True, dynamic=False, backend=backend)
    out = step(**padded, labels=y, return_dict=True)
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.audio_model.encoder.masked_spec_embed.grad.abs().sum() > 0   # the time spans were drawn and used
    model.zero_grad(); torch._dynamo.reset()
