"The architecture diagram is what tools/architecture.py writes, is well-formed SVG, and the pages that show it find it."
import json, subprocess, sys
import xml.etree.ElementTree as ET


def test_architecture_svg_in_sync(root, tmp_path):
    "nbs/images/architecture.svg is exactly what tools/architecture.py generates (edit the script, then rerun it)."
    out = tmp_path/'architecture.svg'
    subprocess.run([sys.executable, str(root/'tools'/'architecture.py'), str(out)], check=True, capture_output=True)
    assert out.read_text() == (root/'nbs'/'images'/'architecture.svg').read_text(), "run: python tools/architecture.py"


def test_architecture_svg_well_formed(root):
    svg = ET.parse(root/'nbs'/'images'/'architecture.svg').getroot()
    assert svg.tag.endswith('svg') and svg.get('viewBox')
    texts = ' '.join(t.text or '' for t in svg.iter() if t.tag.endswith('text'))
    for word in ('MultiModalProcessor', 'RoBERTa', 'Wav2Vec2', 'ViT', '(B, heads, M, M)', 'fused logits', 'unimodal heads',
                 'mmsent_train', 'mmsent_eval', 'mmsent_serve'):
        assert word in texts, word


def test_tutorial_shows_the_diagram(root):
    nb = json.loads((root/'nbs'/'91_tutorial.own_data.ipynb').read_text())
    md = '\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    assert '](images/architecture.svg)' in md
