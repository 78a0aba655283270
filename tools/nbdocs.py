"""Offline docs for mmsent, from the same notebooks nbdev documents, without Quarto.

    python tools/nbdocs.py site [--force]   nbdev's processing into _proc/, then nbconvert into a static site in _docs/
    python tools/nbdocs.py readme           README.md from nbs/index.ipynb (the `readme_nb` of settings.ini)
    python tools/nbdocs.py check            check the built site: pages, API entries, internal links

Step one is nbdev's own: `refresh_quarto_yml`, the doc-link index, `sidebar.yml` and `proc_nbs` (front matter,
hidden cells dropped, `show_doc` cells executed into API tables, backticked names linked). Step two stands in for
`quarto render`: it applies the Quarto cell options nbdev relies on (`echo`, `output`, `include`, `hide`), renders
each processed notebook with nbconvert's `lab` template extended by `tools/docs_template/`, and makes nbdev's
absolute doc links relative so the site works from disk. Where Quarto is installed, `nbdev_docs` remains the
canonical build.
"""
from __future__ import annotations
import argparse, html, json, re, shutil, sys
from pathlib import Path
from urllib.parse import urlsplit

import nbformat, yaml
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter
from nbdev.config import get_config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = Path(__file__).resolve().parent/'docs_template'
_re_directive = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*(?::\s*(.*?))?\s*$')
_re_qattrs = re.compile(r'\[([^\]]+)\]\(([^)\s]+)\)\{[^}]*\}')  # pandoc link attributes: [text](url){...}


def process(force:bool=False, n_workers:int=2)->Path:
    "Run nbdev's notebook processing (what `nbdev_proc_nbs` does, minus installing Quarto); return `_proc/`."
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    from nbdev.doclinks import _build_modidx
    from nbdev.serve import proc_nbs
    cfg = get_config()
    refresh_quarto_yml()
    _build_modidx()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path, force=True)
    return Path(proc_nbs(cfg.nbs_path, n_workers=n_workers, force=force))


def split_directives(src:str)->tuple[dict, str]:
    "Quarto/nbdev cell options (`#| key: value` lines at the top of a cell) and the remaining source."
    opts, lines = {}, src.splitlines()
    i = 0
    while i < len(lines):
        m = _re_directive.match(lines[i])
        if not m: break
        v = m.group(2)
        opts[m.group(1).lower()] = yaml.safe_load(v) if v else True
        i += 1
    return opts, '\n'.join(lines[i:])


def _fix_md(s:str)->str:
    "Turn pandoc-only markdown from `show_doc` into plain markdown that mistune renders."
    return _re_qattrs.sub(lambda m: f'<a class="mm-source" href="{m.group(2)}" target="_blank">{m.group(1)}</a>', s)


def prepare(nb)->dict:
    "Apply Quarto cell options in place, as `quarto render --no-execute` would; return the front matter."
    fm, cells = {}, []
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.lstrip().startswith('---'):
            fm.update(yaml.safe_load(c.source.strip().strip('-')) or {})
            continue
        if c.cell_type == 'markdown':
            if c.source.strip(): cells.append(c)
            continue
        if c.cell_type != 'code': continue
        opts, c.source = split_directives(c.source)
        if opts.get('include') is False or opts.get('hide') or opts.get('exporti') or opts.get('export'): continue
        if opts.get('echo') is False: c.source = ''; c.metadata.setdefault('tags', []).append('remove_input')
        if opts.get('output') is False: c.outputs = []
        for o in c.get('outputs', []):
            md = o.get('data', {}).get('text/markdown')
            if md is not None:
                o['data'] = {'text/markdown': _fix_md(md)}  # a markdown output wins over its text/plain twin
            if o.get('output_type') == 'stream' and o.get('name') == 'stderr' and 'Warning' in o.get('text', ''):
                o['text'] = ''
        c.outputs = [o for o in c.get('outputs', []) if not (o.get('output_type') == 'stream' and not o.get('text'))]
        if c.source.strip() or c.outputs: cells.append(c)
    nb.cells = cells
    return fm


def _slug(text:str)->str:
    "Heading id as Quarto makes it (and as nbdev's doc links expect): lowercase, spaces to dashes."
    return re.sub(r'[^\w.\- ]', '', text.strip().lower()).replace(' ', '-')


def _page_name(nb_rel:str)->str:
    "Output file for a notebook, as nbdev names it (`00_core.ipynb` -> `core.html`)."
    p = Path(nb_rel)
    return str(p.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', p.name.lower())).with_suffix('.html'))


def _sidebar(proc:Path)->list[str]:
    "Notebooks in the order of nbdev's `sidebar.yml`."
    def walk(items):
        for it in items:
            if isinstance(it, str): yield it
            elif isinstance(it, dict):
                if 'href' in it: yield it['href']
                yield from walk(it.get('contents', []))
    sb = yaml.safe_load((proc/'sidebar.yml').read_text())
    return [o for o in walk(sb['website']['sidebar']['contents']) if o.endswith('.ipynb')]


def _rewrite(soup, page:str, cfg):
    "Relative doc links, `.ipynb` links to pages, Quarto-style heading ids."
    base = (cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/') + '/').replace('//', '/').replace(':/', '://')
    depth = page.count('/')
    for a in soup.find_all('a', href=True):
        href = a['href']
        if href.startswith(base): href = '../'*depth + href[len(base):]
        parts = urlsplit(href)
        if not parts.scheme and parts.path.endswith('.ipynb'):
            href = _page_name(parts.path) + (f'#{parts.fragment}' if parts.fragment else '')
        a['href'] = href
    for h in soup.find_all(re.compile('^h[1-6]$')):
        for al in h.find_all('a', class_='anchor-link'): al.decompose()
        hid = _slug(h.get_text())
        h['id'] = hid
        link = soup.new_tag('a', href=f'#{hid}', attrs={'class': 'anchor-link'}); link.string = '¶'
        h.append(link)


def build_site(out:Path|None=None, force:bool=False)->Path:
    "Build the offline docs site; return its folder."
    cfg = get_config()
    proc = process(force=force)
    out = Path(out or cfg.doc_path)
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    site = yaml.safe_load((proc/'nbdev.yml').read_text())['website']
    order = _sidebar(proc)
    pages = []
    for rel in order:
        nb = nbformat.read(proc/rel, as_version=4)
        fm = prepare(nb)
        nb.metadata['title'] = f"{fm.get('title', Path(rel).stem)} – {site['title']}"
        name = fm.get('output-file') or _page_name(rel)
        pages.append(dict(nb=nb, fm=fm, src=rel, href=name, title=fm.get('title', Path(rel).stem)))
    from traitlets.config import Config
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = {'remove_input'}
    exporter = HTMLExporter(config=c, extra_template_basedirs=[str(TEMPLATE_DIR.parent)], template_name=TEMPLATE_DIR.name,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    for p in pages:
        nav = [dict(href='../'*p['href'].count('/') + q['href'], title=q['title'], current=q is p) for q in pages]
        body, res = exporter.from_notebook_node(p['nb'], resources=dict(mm=dict(
            site_title=site['title'], site_description=site.get('description', ''), repo_url=site.get('repo-url', ''),
            title=p['title'], description=p['fm'].get('description', ''), nav=nav, source=f"nbs/{p['src']}",
            home='../'*p['href'].count('/') + 'index.html')))
        soup = BeautifulSoup(body, 'html.parser')
        _rewrite(soup, p['href'], cfg)
        dest = out/p['href']
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(str(soup), encoding='utf-8')
        for fn, data in (res.get('outputs') or {}).items(): (dest.parent/fn).write_bytes(data)
    # files the notebooks refer to (images and such next to them)
    for f in cfg.nbs_path.rglob('*'):
        if f.is_file() and f.suffix.lower() in {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.css'} and not any(
                part.startswith(('.', '_')) for part in f.relative_to(cfg.nbs_path).parts):
            d = out/f.relative_to(cfg.nbs_path); d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, d)
    (out/'.nojekyll').touch()
    return out


def check_site(out:Path|None=None)->list[str]:
    "Problems in a built site: missing pages, exported symbols without API docs, broken internal links."
    cfg = get_config()
    out = Path(out or cfg.doc_path)
    problems, ids, soups = [], {}, {}
    if not (out/'index.html').exists(): return [f'{out}/index.html is missing']
    for nb in sorted(cfg.nbs_path.rglob('*.ipynb')):
        rel = nb.relative_to(cfg.nbs_path)
        if any(p.startswith(('_', '.')) for p in rel.parts): continue
        if not (out/_page_name(str(rel))).exists(): problems.append(f'no page {_page_name(str(rel))} for nbs/{rel}')
    for f in out.rglob('*.html'):
        soup = BeautifulSoup(f.read_text(encoding='utf-8'), 'html.parser')
        soups[f] = soup
        ids[f.resolve()] = {t['id'] for t in soup.find_all(id=True)}
    for f, soup in soups.items():
        for a in soup.find_all('a', href=True):
            parts = urlsplit(a['href'])
            if parts.scheme or a['href'].startswith(('mailto:', '//')): continue
            target = (f.parent/parts.path).resolve() if parts.path else f.resolve()
            if not target.exists(): problems.append(f'{f.relative_to(out)}: broken link {a["href"]}'); continue
            if parts.fragment and target.suffix == '.html' and parts.fragment not in ids.get(target, set()):
                problems.append(f'{f.relative_to(out)}: link {a["href"]} has no anchor #{parts.fragment}')
    modidx = {}
    exec((cfg.lib_path/'_modidx.py').read_text(), modidx)
    for mod, syms in modidx['d']['syms'].items():
        for sym, (doc, _) in syms.items():
            if any(part.startswith('_') for part in sym.split('.')): continue  # private: not documented by nbdev
            page, _, anchor = doc.partition('#')
            target = (out/page).resolve()
            if anchor not in ids.get(target, set()): problems.append(f'{sym}: no API entry #{anchor} in {page}')
    return problems


def _md_output(o, stem:str, n:int, files:dict)->str:
    d = o.get('data', {})
    if o.get('output_type') == 'stream': return f"```\n{o['text'].rstrip()}\n```"
    if 'text/markdown' in d: return d['text/markdown'].strip()
    if 'image/png' in d:
        fn = f'{stem}_files/figure-commonmark/cell-{n}-output-1.png'
        import base64
        files[fn] = base64.b64decode(d['image/png'])
        return f'![]({fn})'
    if 'text/plain' in d: return f"```\n{d['text/plain'].rstrip()}\n```"
    return ''


def build_readme(dest:Path|None=None)->Path:
    "Write README.md from the processed `readme_nb`, as `nbdev_readme` does with Quarto's gfm output."
    cfg = get_config()
    proc = process()
    nb = nbformat.read(proc/cfg.readme_nb, as_version=4)
    fm = prepare(nb)
    stem, files = Path(cfg.readme_nb).stem, {}
    parts = [f"# {fm.get('title', cfg.title)}", '<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->']
    if fm.get('description'): parts.append(f"> {fm['description']}")
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'markdown':
            if 'WARNING: THIS FILE WAS AUTOGENERATED' not in c.source: parts.append(c.source.strip())
            continue
        if c.source.strip(): parts.append(f"```python\n{c.source.strip()}\n```")
        parts += [s for j, o in enumerate(c.outputs) if (s := _md_output(o, stem, i, files))]
    dest = Path(dest or cfg.config_path/'README.md')
    dest.write_text('\n\n'.join(parts) + '\n', encoding='utf-8')
    for fn, data in files.items():
        (dest.parent/fn).parent.mkdir(parents=True, exist_ok=True); (dest.parent/fn).write_bytes(data)
    return dest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('what', choices=['site', 'readme', 'check'])
    ap.add_argument('--out', default=None, help='output folder for the site (default: doc_path of settings.ini)')
    ap.add_argument('--force', action='store_true', help="ignore nbdev's processing cache")
    a = ap.parse_args(argv)
    if a.what == 'readme': return print(f'wrote {build_readme()}')
    if a.what == 'site': out = build_site(a.out, force=a.force); print(f'wrote {len(list(out.rglob("*.html")))} pages to {out}')
    problems = check_site(a.out)
    for p in problems: print('docs:', p, file=sys.stderr)
    if problems: sys.exit(f'docs check failed: {len(problems)} problem(s)')
    print('docs check: ok')


if __name__ == '__main__': main()
