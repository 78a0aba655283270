"""Write the `tiny` preset's processor to mmsent/assets/tiny-processor/ (package data).

    python tools/make_tiny_assets.py

Run once; the output is committed. It is the folder layout of mmsent releases before the Hugging Face
`ProcessorMixin` one (tokenizer/, feature_extractor/, image_processor/, mmsent_processor.json), which
`MultiModalProcessor.from_pretrained` still reads, so the tiny preset loads through the same path as any saved model. The tokenizer is a byte-level BPE, so any text (accents, emoji)
encodes without unknown tokens; its 1,000-token vocabulary is learnt from the word list below (everyday English
plus sentiment words, negations and fillers) so that common words are single tokens. `mmsent_processor.json` is
empty: the processor's own defaults apply.
"""
import json
from pathlib import Path
from tokenizers import ByteLevelBPETokenizer
from tokenizers.processors import RobertaProcessing
from transformers import RobertaTokenizerFast, Wav2Vec2FeatureExtractor, AutoImageProcessor

OUT = Path(__file__).resolve().parent.parent/'mmsent'/'assets'/'tiny-processor'
SPECIALS = ['<s>', '<pad>', '</s>', '<unk>', '<mask>']  # RoBERTa's ids 0-4
WORDS = """
the a an and or but so because if then than when while this that these those it its i you he she we they me him her us
them my your his our their is are was were be been being am do does did done have has had will would can could should
may might must not no never nothing nobody none neither nor hardly barely without don't doesn't didn't isn't wasn't
aren't won't can't couldn't shouldn't very really quite so too extremely somewhat slightly rather pretty fairly
absolutely totally completely just only also still even again about above after before during into over under with
from for of on at by to in up down out off what which who whom whose why how where all any both each few more most
other some such own same one two three first last time day week year today yesterday tomorrow people man woman thing
movie film show song music story book food place service product experience acting plot ending scene character actor
good great excellent amazing wonderful fantastic brilliant lovely love loved like liked enjoy enjoyed happy glad
pleased delighted awesome perfect beautiful best better nice fun funny charming impressive superb outstanding
recommend recommended favorite pleasant satisfying satisfied exciting thrilled joy smile smiling laugh
bad terrible awful horrible worst worse poor boring dull hate hated dislike disliked sad angry annoyed annoying
disappointing disappointed disappointment waste wasted mediocre ugly painful weak stupid ridiculous frustrating
frustrated upset unhappy miserable disgusting failure fail failed broken cry crying
okay ok fine average normal ordinary neutral plain usual typical standard regular moderate mixed alright decent
fair acceptable unremarkable forgettable whatever maybe perhaps think thought guess seems seemed looks looked felt
feel feeling feels say said tell told know knew see saw watch watched hear heard went go going come came get got
make made take took give gave find found want wanted work worked look well yes yeah uh um hmm honestly actually
basically kind sort lot little much many enough almost
""".split()


def corpus():
    "A few thousand short lines mixing the words, so merges form whole words and common pairs."
    import random
    rng = random.Random(0)
    for _ in range(4000): yield ' '.join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
    yield from WORDS


def main():
    tok = ByteLevelBPETokenizer(add_prefix_space=False)
    tok.train_from_iterator(corpus(), vocab_size=1000, min_frequency=2, special_tokens=SPECIALS)
    tok._tokenizer.post_processor = RobertaProcessing(('</s>', 2), ('<s>', 0), trim_offsets=True, add_prefix_space=False)
    hf = RobertaTokenizerFast(tokenizer_object=tok._tokenizer, bos_token='<s>', eos_token='</s>', sep_token='</s>',
                              cls_token='<s>', unk_token='<unk>', pad_token='<pad>', mask_token='<mask>', model_max_length=512)
    hf.save_pretrained(OUT/'tokenizer')
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(OUT/'feature_extractor')
    # a 64x64 ViT image processor (written as JSON: constructing ViTImageProcessor directly warns without torchvision)
    (OUT/'image_processor').mkdir(parents=True, exist_ok=True)
    (OUT/'image_processor'/'preprocessor_config.json').write_text(json.dumps(dict(
        image_processor_type='ViTImageProcessor', do_resize=True, size=dict(height=64, width=64), resample=2,
        do_rescale=True, rescale_factor=1/255, do_normalize=True, image_mean=[0.5]*3, image_std=[0.5]*3), indent=2))
    AutoImageProcessor.from_pretrained(OUT/'image_processor')  # check it loads
    (OUT/'mmsent_processor.json').write_text('{}\n')
    print(f'wrote {OUT} ({len(hf)} tokens)')


if __name__ == '__main__': main()
