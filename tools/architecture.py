"""Write nbs/images/architecture.svg: how mmsent turns raw files into a prediction, and the commands around it.

Plain SVG written by hand (no graphviz binary needed). Run: `python tools/architecture.py [OUT]`.
"""
import sys
from pathlib import Path
from xml.sax.saxutils import escape

W, H = 1180, 770
FONT = "font-family='Helvetica, Arial, sans-serif'"
# light fills, one per stage; a darker stroke of the same hue
COL = dict(file=('#f3f4f6', '#6b7280'), proc=('#e0f2fe', '#0284c7'), enc=('#ede9fe', '#7c3aed'), pool=('#fef9c3', '#ca8a04'),
           fuse=('#dcfce7', '#16a34a'), head=('#ffe4e6', '#e11d48'), cli=('#fff7ed', '#ea580c'), out=('#f8fafc', '#475569'))

out = []

def box(x, y, w, h, kind, lines, bold_first=True, size=13, r=8, dash=False):
    "A rounded box with centred lines of text (the first in bold)."
    fill, stroke = COL[kind]
    d = " stroke-dasharray='5 4'" if dash else ''
    out.append(f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='{r}' fill='{fill}' stroke='{stroke}' stroke-width='1.5'{d}/>")
    lh = size + 4
    y0 = y + h/2 - (len(lines) - 1)*lh/2 + size*0.35
    for i, t in enumerate(lines):
        wt = " font-weight='bold'" if (i == 0 and bold_first) else ''
        s = size if i == 0 else size - 1
        out.append(f"<text x='{x + w/2}' y='{y0 + i*lh:.1f}' {FONT} font-size='{s}' text-anchor='middle' fill='#111827'{wt}>{escape(t)}</text>")

def label(x, y, t, size=12, anchor='middle', color='#374151', bold=False, italic=False):
    st = (" font-weight='bold'" if bold else '') + (" font-style='italic'" if italic else '')
    out.append(f"<text x='{x}' y='{y}' {FONT} font-size='{size}' text-anchor='{anchor}' fill='{color}'{st}>{escape(t)}</text>")

def arrow(x1, y1, x2, y2, color='#4b5563', dash=False):
    d = " stroke-dasharray='5 4'" if dash else ''
    out.append(f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='{color}' stroke-width='1.6' marker-end='url(#arrow)'{d}/>")

def path(d, color='#4b5563', dash=False):
    ds = " stroke-dasharray='5 4'" if dash else ''
    out.append(f"<path d='{d}' fill='none' stroke='{color}' stroke-width='1.6' marker-end='url(#arrow)'{ds}/>")

# ---- title
label(W/2, 30, 'What mmsent does with your files', size=19, bold=True, color='#111827')
label(W/2, 50, 'B = samples in a batch, M = 3 modalities, D = encoder width, d = fusion width; absent modalities are masked, never filled in',
      size=12, italic=True)

# ---- the model: five columns, three rows (text, audio, visual)
rows = [('text', 112), ('audio', 212), ('visual', 312)]
rh = 76
files = {'text': ['text', 'the utterance (CSV "text")'], 'audio': ['audio', '.wav/.flac/... or', "a video's sound track"],
         'visual': ['image', '.png/.jpg/... or', "a video's frame(s)"]}
proc = {'text': ['tokenizer', 'RoBERTa BPE: token ids,', 'attention mask'], 'audio': ['feature extractor', '16 kHz mono waveform,',
        'normalised, with a mask'], 'visual': ['image processor', 'resized and normalised', 'RGB pixels']}
enc = {'text': ['RoBERTa', 'one vector per token'], 'audio': ['Wav2Vec2', 'one vector per frame'], 'visual': ['ViT', 'one vector per patch']}
pool = {'text': ['mean over tokens', '(B, D_text)'], 'audio': ['mean over frames', '(B, D_audio)'], 'visual': ['[CLS] token', 'video: frames averaged', '(B, D_visual)']}
X = dict(file=20, proc=200, enc=420, pool=600)
BW = dict(file=150, proc=190, enc=150, pool=150)
for m, y in rows:
    box(X['file'], y, BW['file'], rh, 'file', files[m])
    box(X['proc'], y, BW['proc'], rh, 'proc', proc[m], size=13)
    box(X['enc'], y, BW['enc'], rh, 'enc', enc[m])
    box(X['pool'], y, BW['pool'], rh, 'pool', pool[m])
    for a, b in (('file', 'proc'), ('proc', 'enc'), ('enc', 'pool')):
        arrow(X[a] + BW[a], y + rh/2, X[b] - 3, y + rh/2)
# group frames and column captions
out.append(f"<rect x='{X['proc'] - 10}' y='86' width='{BW['proc'] + 20}' height='{312 + rh + 10 - 86}' rx='10' fill='none' stroke='#0284c7' stroke-width='1.2' stroke-dasharray='4 3'/>")
label(X['proc'] + BW['proc']/2, 78, 'MultiModalProcessor', size=13, bold=True, color='#0369a1')
label(X['file'] + BW['file']/2, 78, 'raw files', size=13, bold=True, color='#4b5563')
label(X['enc'] + BW['enc']/2, 78, 'encoders', size=13, bold=True, color='#6d28d9')
label(X['pool'] + BW['pool']/2, 78, 'pooled embeddings', size=13, bold=True, color='#a16207')

# ---- fusion column
fx, fw = 800, 190
label(fx + fw/2, 78, 'attention fusion', size=13, bold=True, color='#15803d')
box(fx, 96, fw, 58, 'fuse', ['project each to d', '+ modality embedding: (B, M, d)'], size=12)
box(fx, 176, fw, 70, 'fuse', ['self-attention', 'over the M modality tokens,', 'weights (B, heads, M, M)'], size=12)
box(fx, 268, fw, 52, 'fuse', ['mean over the', 'modalities present: (B, d)'], bold_first=False, size=12)
box(fx, 342, fw, 46, 'head', ['fused head (MLP)'], size=12)
arrow(fx + fw/2, 154, fx + fw/2, 173)
arrow(fx + fw/2, 246, fx + fw/2, 265)
arrow(fx + fw/2, 320, fx + fw/2, 339)
for m, y in rows:   # pooled embeddings into the projection
    path(f"M {X['pool'] + BW['pool']} {y + rh/2} C {X['pool'] + BW['pool'] + 35} {y + rh/2}, {fx - 40} 125, {fx - 3} 125")

# ---- outputs
ox, ow = 1020, 140
box(ox, 330, ow, 70, 'out', ['fused logits', '(B, 3): negative,', 'neutral, positive'], size=12)
arrow(fx + fw, 365, ox - 3, 365)
box(ox, 176, ow, 70, 'out', ['attention', '(B, heads, M, M) and', 'what each receives'], size=12)
arrow(fx + fw, 211, ox - 3, 211)

# ---- unimodal heads under the pooled embeddings
uy = 424
box(X['pool'], uy, BW['pool'] + 0, 62, 'head', ['unimodal heads', 'one per modality'], size=12)
box(fx, uy, fw, 62, 'out', ['unimodal logits', '(B, 3) per modality:', "each modality's own view"], size=12)
arrow(X['pool'] + BW['pool']/2, 312 + rh, X['pool'] + BW['pool']/2, uy - 3)
arrow(X['pool'] + BW['pool'], uy + 31, fx - 3, uy + 31)
label(X['enc'] + BW['enc'] + 2, uy + 28, 'training: the loss is on the fused', size=11, anchor='end', italic=True)
label(X['enc'] + BW['enc'] + 2, uy + 43, 'and on each unimodal head\u2019s logits', size=11, anchor='end', italic=True)
label(fx + fw/2, 406, 'other fusions: --fusion concat, gated, crossmodal', size=11, italic=True, color='#4b5563')

# ---- the commands around the model
cy = 560
out.append(f"<line x1='20' y1='{cy - 34}' x2='{W - 20}' y2='{cy - 34}' stroke='#d1d5db' stroke-width='1'/>")
label(20, cy - 12, 'The commands around it', size=15, bold=True, anchor='start', color='#111827')
cw, ch, gap = 200, 84, 36
cmds = [('mmsent_check_data', ['every file exists and', 'decodes; labels, splits']),
        ('mmsent_train', ['fits the model on train,', 'keeps the best on val']),
        ('mmsent_eval', ['test metrics, ablation,', 'Shapley values, plots']),
        ('Predictor / mmsent_predict', ['one sample, a manifest', 'or an interactive prompt']),
        ('mmsent_serve', ['HTTP POST /predict,', 'dynamic batching'])]
xs = [20 + i*(cw + gap) for i in range(len(cmds))]
for x, (name, desc) in zip(xs, cmds):
    box(x, cy, cw, ch, 'cli', [name, *desc], size=13)
arrow(xs[0] + cw, cy + ch/2, xs[1] - 3, cy + ch/2)
arrow(xs[1] + cw, cy + ch/2, xs[2] - 3, cy + ch/2)
# the saved model feeds eval, predict and serve
my = cy + ch + 50
box(xs[1] + 10, my, cw + 2*gap + cw - 20 + 0, 52, 'out', ['models/end_to_end_multimodal_best/',
    'weights, config, processor files, checksums'], size=12)
arrow(xs[1] + cw/2, cy + ch, xs[1] + cw/2, my - 3)
path(f"M {xs[1] + cw + gap + cw/2 + 40} {my} L {xs[2] + cw/2 + 40} {cy + ch + 3}")
path(f"M {xs[1] + 10 + cw + 2*gap + cw - 20} {my + 26} L {xs[3] + cw/2} {my + 26} L {xs[3] + cw/2} {cy + ch + 3}")
path(f"M {xs[3] + cw/2} {my + 26} L {xs[4] + cw/2} {my + 26} L {xs[4] + cw/2} {cy + ch + 3}")
label(xs[0] + cw/2, my + 20, 'your manifest: CSV or JSONL', size=12, color='#374151')
label(xs[0] + cw/2, my + 36, '(or MELD, CMU-MOSI/MOSEI)', size=12, color='#374151')
arrow(xs[0] + cw/2, my + 2, xs[0] + cw/2, cy + ch + 3)
path(f"M {xs[0] + cw/2 + 60} {my + 8} C {xs[0] + cw + 10} {my + 8}, {xs[1] - 20} {cy + ch + 30}, {xs[1] + 30} {cy + ch + 3}")

svg = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {W} {H}' width='{W}' height='{H}' role='img' "
       f"aria-label='mmsent architecture: raw files, processor, encoders, pooled embeddings, attention fusion, heads; and the commands'>\n"
       "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
       "<path d='M 0 0 L 10 5 L 0 10 z' fill='#4b5563'/></marker></defs>\n"
       f"<rect width='{W}' height='{H}' fill='white'/>\n" + '\n'.join(out) + '\n</svg>\n')

if __name__ == '__main__':
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]/'nbs'/'images'/'architecture.svg')
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(svg)
    print(f'wrote {dest}')
