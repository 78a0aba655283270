"The offline docs site: a page per notebook, an API entry per exported symbol, no broken internal links; parameter tables, math (KaTeX), a table of contents, search, sidebar sections and the app's screenshot."
import contextlib, json, os, re, shutil
from pathlib import Path
import pytest
from bs4 import BeautifulSoup

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'


@pytest.fixture(scope='module')
def site(root, nbdocs):
    "The built site in _docs/, (re)built here when missing or older than a notebook."
    os.chdir(root)
    out = root/'_docs'
    sources = [*(root/'nbs').rglob('*.ipynb'), *(root/'tools'/'docs_template').rglob('*'), root/'tools'/'nbdocs.py', *(root/'nbs'/'images').glob('*')]
    newest = max(p.stat().st_mtime for p in sources if p.is_file())
    if not (out/'index.html').exists() or (out/'index.html').stat().st_mtime < newest: nbdocs.build_site(out)
    return out


def notebooks(root):
    return [p for p in sorted((root/'nbs').glob('*.ipynb')) if not p.name.startswith('_')]


def test_site_has_a_page_per_notebook(site, root, nbdocs):
    nbs = notebooks(root)
    assert len(nbs) >= 2
    for nb in nbs:
        page = site/nbdocs._page_name(nb.name)
        assert page.exists(), f'{page} missing for {nb}'
        soup = BeautifulSoup(page.read_text(), 'html.parser')
        assert soup.find('nav', class_='mm-side'), f'{page} has no sidebar'
        assert len(soup.select('nav.mm-side a')) == len(nbs), f'{page}: sidebar does not list every page'
        assert soup.select_one('.mm-title h1').get_text(strip=True), f'{page} has no title'


def test_site_check_passes(site, nbdocs):
    assert nbdocs.check_site(site) == []


def test_api_entries_show_signature_and_docs(site):
    soup = BeautifulSoup((site/'core.html').read_text(), 'html.parser')
    h = soup.find(id='label_id')
    assert h is not None and h.name.startswith('h')
    text = soup.get_text()
    assert 'Normalise one label to its integer id' in text    # the docstring
    assert 'an int id, a numpy integer' in text                # a docments parameter comment
    assert 'test_eq(' in text                                   # tests shown as examples
    assert 'show_doc(' not in text and 'nbdev_export' not in text and '#| export' not in text  # hidden cells dropped


def test_index_is_the_readme_notebook(site):
    soup = BeautifulSoup((site/'index.html').read_text(), 'html.parser')
    assert 'Quick start' in soup.get_text()
    assert soup.find('a', href='core.html'), 'sidebar/home does not link the core page'


def test_check_finds_broken_links(site, nbdocs, tmp_path):
    "The checker itself can fail: a page with a dead link and a missing anchor is reported."
    import shutil
    bad = tmp_path/'site'
    shutil.copytree(site, bad)
    page = bad/'core.html'
    page.write_text(page.read_text().replace('</main>', '<a href="nowhere.html">x</a><a href="index.html#no-such-anchor">y</a></main>', 1))
    twice = bad/'predict.html'   # an API entry shown twice, as when a notebook repeats the show_doc nbdev adds after a @patch cell
    twice.write_text(twice.read_text().replace('</main>', '<div class="mm-api"><h3 id="predictor.read">Predictor.read</h3></div></main>', 1))
    again = bad/'model.html'   # the same, where the page gave the second copy its own id
    again.write_text(again.read_text().replace('</main>', '<div class="mm-api"><h3 id="modelconfig-1">ModelConfig</h3></div></main>', 1))
    problems = nbdocs.check_site(bad)
    assert any('nowhere.html' in p for p in problems) and any('no-such-anchor' in p for p in problems), problems
    assert 'predict.html: API entry #predictor.read appears 2 times' in problems, problems
    assert 'model.html: API entry #modelconfig appears 2 times' in problems, problems


def page(site, name): return BeautifulSoup((site/name).read_text(encoding='utf-8'), 'html.parser')


@contextlib.contextmanager
def browser_page(width:int, height:int):
    "A headless Chromium page of this size, and the list its script errors go to; the browser closes afterwards."
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=['--headless', '--no-sandbox', '--disable-gpu'])
        try:
            pg = browser.new_page(viewport={'width': width, 'height': height})
            errors = []
            pg.on('pageerror', lambda e: errors.append(str(e)))
            yield pg, errors
        finally: browser.close()


def api_entry(soup, anchor):
    "The `.mm-api` block of one API entry, by its heading id."
    h = soup.find(id=anchor)
    assert h is not None, f'no API entry #{anchor}'
    return h.find_parent(class_='mm-api')


def param_rows(entry)->dict:
    "Parameter name -> (type, default, details) of an entry's parameter table."
    tbl = entry.find('table', class_='mm-params')
    assert tbl is not None, 'no parameter table'
    assert [th.get_text(strip=True) for th in tbl.find_all('th')] == ['Parameter', 'Type', 'Default', 'Details']
    return {tds[0].get_text(strip=True): [td.get_text(' ', strip=True) for td in tds[1:]]
            for tds in (tr.find_all('td') for tr in tbl.tbody.find_all('tr'))}


def test_trainconfig_has_a_parameter_table(site):
    "A dataclass: one row per field with its type, default and docment comment; shown as a class, not a `def`."
    e = api_entry(page(site, 'train.html'), 'trainconfig')
    rows = param_rows(e)
    assert len(rows) >= 40, len(rows)
    typ, default, details = rows['learning_rate']
    assert typ == 'float | None' and default == 'None' and details, rows['learning_rate']
    assert rows['batch_size'][:2] == ['int', '16'] and rows['batch_size'][2]
    assert rows['epochs'][:2] == ['int | None', 'None'] and '20 for tiny' in rows['epochs'][2]
    sig = e.find('pre').get_text()
    assert sig.startswith('class TrainConfig(') and 'def ' not in sig and '#' not in sig, sig[:200]
    assert 'Everything a training run depends on' in e.get_text()          # its own docstring


def test_fusion_configs_and_functions_have_tables(site):
    soup = page(site, 'fusion.html')
    for anchor, field in [('fusionconfig', 'd_model'), ('fusionoutput', 'logits'), ('build_fusion', 'config')]:
        assert field in param_rows(api_entry(soup, anchor)), (anchor, field)
    assert api_entry(soup, 'build_fusion').find('pre').get_text().startswith('def build_fusion(')


def test_docment_markdown_is_rendered(site):
    "Backticked names in a docment become links to their API entry (or code), never raw markdown."
    e = api_entry(page(site, 'cache.html'), 'encoder_fingerprint')
    details = [tr.find_all('td')[3] for tr in e.find('table', class_='mm-params').tbody.find_all('tr')]
    a = [d for d in details if 'UnimodalSentimentModel' in d.get_text()][0]
    assert a.find('a', href=re.compile(r'^encoders\.html#unimodalsentimentmodel$')) and '`' not in a.get_text()


def test_no_raw_markdown_in_signatures_or_tables(site):
    for f in sorted(site.glob('*.html')):
        for el in page(site, f.name).select('.mm-api pre, table.mm-params'):
            t = el.get_text()
            assert '](http' not in t and '[`' not in t, f'{f.name}: raw markdown link in {t[:200]!r}'


def test_forwards_show_their_own_docstring(site):
    "A `forward` without a docstring shows none, never `nn.Module.forward`'s."
    for f in sorted(site.glob('*.html')):
        assert 'Define the computation performed at every call' not in f.read_text(encoding='utf-8'), f.name


def test_no_raw_math(site, nbdocs):
    "Math is marked for KaTeX (as pandoc marks it) on every page; the checker finds `$...$` left in text."
    n_math = 0
    for f in sorted(site.glob('*.html')):
        soup = page(site, f.name)
        assert nbdocs.raw_math(soup) == [], f.name
        n_math += len(soup.select('span.math'))
        if soup.select_one('span.math'): assert soup.find('script', src='assets/katex/katex.min.js'), f.name
    assert n_math > 0
    bad = BeautifulSoup('<div class="jp-RenderedMarkdown"><p>the loss $L = -\\log p$ and <code>$HOME</code></p></div>', 'html.parser')
    assert nbdocs.raw_math(bad) == ['the loss $L = -\\log p$ and']


def test_markdown_math_is_marked():
    import importlib.util
    spec = importlib.util.spec_from_file_location('nbdocs2', Path(__file__).resolve().parent.parent/'tools'/'nbdocs.py')
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    h = m.md2html('inline $a^2$ and\n\n$$\\sum_i x_i$$\n\ncosts 5$ only `$x$`')
    assert '<span class="math inline">\\(a^2\\)</span>' in h and '<span class="math display">\\[\\sum_i x_i\\]</span>' in h
    assert '<code>$x$</code>' in h


def test_katex_and_search_assets(site):
    for f in ['assets/katex/katex.min.js', 'assets/katex/katex.min.css', 'assets/katex/LICENSE', 'assets/katex/fonts/KaTeX_Main-Regular.woff2',
              'assets/minisearch/minisearch.js', 'assets/minisearch/LICENSE', 'assets/site.js', 'assets/site.css']:
        assert (site/f).is_file(), f
    for font in re.findall(r'url\((fonts/[^)]+\.woff2)\)', (site/'assets/katex/katex.min.css').read_text()):
        assert (site/'assets/katex'/font).is_file(), font


def test_table_of_contents(site):
    soup = page(site, 'train.html')
    toc = soup.find('nav', class_='mm-toc')
    assert toc is not None and 'On this page' in toc.get_text()
    links = [a['href'] for a in toc.find_all('a')]
    h2 = [h['id'] for h in soup.find('main').find_all('h2')]
    assert len(h2) >= 2 and all(f'#{i}' in links for i in h2), (h2, links)
    assert '#trainconfig' in links
    ids = {t['id'] for t in soup.find_all(id=True)}
    assert all(l[1:] in ids for l in links)


def search_index(site):
    js = (site/'search-index.js').read_text(encoding='utf-8')
    assert js.startswith('window.MMSENT_SEARCH_DOCS = ')
    return json.loads(js[len('window.MMSENT_SEARCH_DOCS = '):].rstrip().rstrip(';'))


def test_search_index(site):
    docs = search_index(site)
    assert len({d['id'] for d in docs}) == len(docs) > 50
    train = [d for d in docs if d['href'].startswith('train.html')]
    assert any('learning_rate' in d['text'] for d in train)
    assert any(d['href'] == 'train.html#trainconfig' and d['title'] == 'TrainConfig' for d in train)
    for f in site.glob('*.html'):
        soup = page(site, f.name)
        assert soup.find('input', id='mm-search-input') and soup.find('script', src='assets/site.js'), f.name
        for d in (d for d in docs if d['href'].partition('#')[0] == f.name and '#' in d['href']):
            assert soup.find(id=d['href'].partition('#')[2]), d['href']


def test_sidebar_sections(site, root, nbdocs):
    "Sections by notebook name, in reading order; nbs/sidebar.yml (Quarto's sidebar too) is what the rule gives."
    soup = page(site, 'index.html')
    got = [t.get_text(strip=True) for t in soup.select('nav.mm-side .mm-section-title')]
    want = [s for s in nbdocs.SECTIONS if s in got]
    assert got == want and got[:2] == ['Get started', 'Tutorials'] and {'How-to', 'API', 'Benchmarks'} <= set(got), got
    sec = {t.get_text(strip=True): [a['href'] for a in t.find_parent(class_='mm-section').find_all('a')] for t in soup.select('.mm-section-title')}
    assert sec['Get started'] == ['index.html'] and 'tutorial.html' in sec['Tutorials'] and 'benchmarks.html' in sec['Benchmarks']
    assert 'train.html' in sec['API'] and 'tutorial.html' not in sec['API']
    assert (root/'nbs'/'sidebar.yml').read_text() == nbdocs.sidebar_yml(root/'nbs')
    assert 'custom_sidebar = True' in (root/'settings.ini').read_text()
    for name, want in [('90_tutorial.ipynb', 'Tutorials'), ('91_tutorial.own_data.ipynb', 'Tutorials'), ('94_tutorial.pretraining.ipynb', 'Tutorials'),
                       ('92_howto.reproduce.ipynb', 'How-to'), ('96_howto.benchmarks.ipynb', 'How-to'), ('98_benchmarks.ipynb', 'Benchmarks'),
                       ('05_train.ipynb', 'API'), ('04a_cache.ipynb', 'API'), ('index.ipynb', 'Get started')]:
        assert nbdocs.section_of(name) == want, name


def test_app_page_shows_the_screenshot(site, root):
    img = page(site, 'app.html').find('img', src=re.compile(r'images/app\.png$'))
    assert img is not None, 'app.html has no screenshot'
    png = site/img['src']
    assert png.is_file() and png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 20_000


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason='no chromium (apt-get install chromium)')
def test_site_in_a_browser(site):
    "From file://: KaTeX renders the math, nothing widens the page, and typing in the search box lists results."
    with browser_page(1280, 900) as (pg, errors):
        for name in ['train.html', 'tutorial.html', 'fusion.html', 'index.html']:
            pg.goto((site/name).as_uri())
            pg.wait_for_load_state('load')
            width, inner = pg.evaluate('[document.documentElement.scrollWidth, window.innerWidth]')
            assert width <= inner, f'{name} is {width}px wide in a {inner}px window'
            n_math = pg.locator('span.math').count()
            if n_math: pg.wait_for_function(f'document.querySelectorAll("span.math .katex").length == {n_math}', timeout=10_000)
        pg.fill('#mm-search-input', 'learning rate')
        pg.wait_for_selector('#mm-search-results a', timeout=10_000)
        assert 'train' in pg.locator('#mm-search-results').inner_text()
        assert errors == [], errors


def test_readme_images_point_into_the_notebooks_folder(nbdocs, root):
    "An image the index notebook shows as `images/x.svg` (right for the docs site) is `nbs/images/x.svg` in README.md; web links stay."
    assert nbdocs._readme_images('![a](images/x.svg) ![b](https://x.org/y.png)', 'nbs') == '![a](nbs/images/x.svg) ![b](https://x.org/y.png)'
    readme = (root/'README.md').read_text()
    assert '](nbs/images/architecture.svg)' in readme and (root/'nbs'/'images'/'architecture.svg').exists()


def entry(site, page:str, name:str):
    "The API entry `name` on `page`: its div."
    soup = BeautifulSoup((site/page).read_text(), 'html.parser')
    h = soup.find(id=name)
    assert h is not None and h.find_parent(class_='mm-api'), f'{page}: no entry {name}'
    return h.find_parent(class_='mm-api')


def test_default_exp_is_read_from_the_code_cell(site, root, nbdocs):
    "Each page documents its own module: the training page's resume_point takes a TrainConfig, the pre-training page's a PretrainConfig."
    assert nbdocs.default_exp(root/'nbs'/'05_train.ipynb') == 'train' and nbdocs.default_exp(root/'nbs'/'91_tutorial.own_data.ipynb') is None
    assert 'config:TrainConfig' in entry(site, 'train.html', 'resume_point').find('pre').get_text()
    assert 'config:PretrainConfig' in entry(site, 'pretrain.html', 'resume_point').find('pre').get_text()


def test_a_dataclass_with_kwargs_init_lists_its_fields(site):
    "ModelConfig's `__init__(**kwargs)`: the entry lists its documented fields instead."
    div = entry(site, 'model.html', 'modelconfig')
    rows = {tr.find('td').get_text(strip=True): tr for tr in div.select('table.mm-params tbody tr')}
    assert {'preset', 'modalities', 'fusion', 'task', 'context_turns'} <= set(rows) and 'kwargs' not in ' '.join(rows), list(rows)
    assert 'where the encoders come from' in rows['preset'].get_text() and rows['preset'].find_all('td')[2].get_text() == "'base'"
    # a docment too long for its field's line sits on the comment lines just above it
    assert 'LoRA adapters on every encoder' in rows['lora'].get_text() and 'full fine-tuning' in rows['lora'].get_text()


def test_tables_need_documented_parameters_and_callables_have_types(site, nbdocs):
    "No parameter table where no parameter is documented (as nbdev); train's callback has its type, not NoneType."
    def f(a, b=2): "No parameter documented."
    def g(a, # the first
          b=2): "One documented."
    assert 'mm-params' not in nbdocs.api_doc(f, 'f') and 'mm-params' in nbdocs.api_doc(g, 'g')
    def h(x=None): "An undocumented parameter with no type."
    assert 'NoneType' not in nbdocs.api_doc(h, 'h')
    sig = entry(site, 'train.html', 'train').find('pre').get_text()
    assert 'on_epoch_end:Callable' in sig and 'NoneType' not in sig, sig


def test_heading_ids_are_unique_and_entries_keep_theirs(site, root, nbdocs):
    "The page title 'train' and the entry `train` no longer share an id; the entry keeps `#train`, which doc links use."
    soup = BeautifulSoup((site/'train.html').read_text(), 'html.parser')
    assert soup.find(id='train').find_parent(class_='mm-api')
    for page in site.glob('*.html'):
        ids = [t['id'] for t in BeautifulSoup(page.read_text(), 'html.parser').find_all(id=True)]
        assert len(ids) == len(set(ids)), (page.name, sorted({i for i in ids if ids.count(i) > 1}))


def test_a_plot_cell_without_its_image_fails_the_docs_check(root, nbdocs, tmp_path):
    "Every plot a page draws is saved with it; clearing one plot cell's output, or the output a sentence announces, is a docs problem."
    import nbformat
    assert nbdocs.unshown_outputs(root/'nbs') == []
    nb = nbformat.read(root/'nbs'/'06_evaluation.ipynb', as_version=4)
    plot = next(i for i, c in enumerate(nb.cells) if c.cell_type == 'code' and c.source.startswith('cm_fig = plot_confusion('))
    nb.cells[plot].outputs = []
    nb.cells.insert(plot + 1, nbformat.v4.new_markdown_cell('The same numbers as plots:'))
    nb.cells.insert(plot + 2, nbformat.v4.new_code_cell('plot_ablation(abl);'))
    nbformat.write(nb, tmp_path/'06_evaluation.ipynb')
    assert nbdocs.unshown_outputs(tmp_path) == [f'nbs/06_evaluation.ipynb: cell {plot} draws a plot but has no saved image',
                                               f'nbs/06_evaluation.ipynb: cell {plot + 2} draws a plot but has no saved image',
                                               f'nbs/06_evaluation.ipynb: cell {plot + 2} has no saved output, and the prose before it announces one']


def test_plots_are_on_their_pages(site):
    "The evaluation page shows each plot function's figure; the tutorial its curves, confusion matrix, ablation, Shapley and attention plots."
    for page, least in (('evaluation.html', 7), ('tutorial.html', 5), ('app.html', 2)):
        imgs = BeautifulSoup((site/page).read_text(), 'html.parser').select('main img')
        assert len(imgs) >= least, (page, len(imgs))


def test_subtitles_are_markdown_and_source_links_go_to_the_notebook(site):
    "The serve page's subtitle shows `mmsent_serve` as code, not in backticks; its header's source link opens nbs/08c_serve.ipynb."
    soup = BeautifulSoup((site/'serve.html').read_text(), 'html.parser')
    desc = soup.select_one('.mm-title .mm-desc')
    assert desc.find('code') and '`' not in desc.get_text(), desc
    assert '`' not in soup.find('meta', attrs={'name': 'description'})['content']
    assert soup.select_one('header a.mm-tag')['href'].endswith('/blob/main/nbs/08c_serve.ipynb')


def test_pages_link_to_the_previous_and_next_page_in_sidebar_order(site, root, nbdocs):
    order = [href for _, rels in nbdocs.read_sidebar(root/'nbs'/'sidebar.yml') for href in map(nbdocs._page_name, rels)]
    for before, name, after in zip([None, *order], order, [*order[1:], None]):
        pager = page(site, name).find('nav', class_='mm-pager')
        links = {a['rel'][0]: a['href'] for a in pager.find_all('a')}
        assert links.get('prev') == before and links.get('next') == after, (name, links)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason='no chromium (apt-get install chromium)')
def test_a_phone_sized_window_opens_the_menu_and_follows_a_link(site):
    """At 420 px: no page is wider than the window; the sidebar is hidden until the menu button opens it; a link in it
    leads to its page; the contents list is a closed box that opens; a code block's copy button copies."""
    with browser_page(420, 860) as (pg, errors):
        for html_page in sorted(site.glob('*.html')):
            pg.goto(html_page.as_uri())
            width = pg.evaluate('document.documentElement.scrollWidth')
            assert width <= 420, f'{html_page.name} is {width}px wide in a 420px window'
        pg.goto((site/'index.html').as_uri())
        assert pg.is_visible('.mm-menu') and not pg.is_visible('#mm-side')
        pg.click('.mm-menu')
        assert pg.is_visible('#mm-side') and pg.get_attribute('.mm-menu', 'aria-expanded') == 'true'
        pg.click('#mm-side a[href="train.html"]')
        pg.wait_for_url('**/train.html')
        assert pg.inner_text('h1.title') == 'train' and not pg.is_visible('#mm-side')
        contents = pg.locator('details.mm-toc-inline')
        assert contents.is_visible() and not pg.is_visible('details.mm-toc-inline a >> nth=0')
        pg.click('details.mm-toc-inline summary')
        assert pg.is_visible('details.mm-toc-inline a >> nth=0')
        pg.click('.mm-copy >> nth=0')
        pg.wait_for_function('document.querySelector(".mm-copy").textContent === "Copied"', timeout=5_000)
        assert errors == [], errors


def test_the_training_page_lists_at_most_30_entries(site):
    "The training page documents what a user calls; the loop's plumbing has a leading underscore and no entry."
    entries = [h['id'] for h in page(site, 'train.html').select('.mm-api h3[id]') if '.' not in h['id']]
    assert len(entries) <= 30, entries
    assert {'trainconfig', 'train', 'run_seeds', 'mmsent_train'} <= set(entries) and 'flush_tally' not in entries


def test_api_pages_list_their_entry_points_first(site, nbdocs, tmp_path):
    """An API page's contents list starts with the entry points its front matter names, each linked to its entry, in the
    side list and in the collapsed box; the docs check reports an entry point that has no entry on the page."""
    train = page(site, 'train.html')
    for toc in (train.select_one('nav.mm-toc > ul'), train.select_one('details.mm-toc-inline > ul')):
        first = toc.find('li', recursive=False)
        assert 'mm-toc-entry-points' in first['class'] and first.get_text().startswith('Entry points'), first
        links = first.select('a')
        assert [a.get_text() for a in links] == ['mmsent_train', 'train', 'TrainConfig', 'run_seeds', 'load_checkpoint']
        assert all(train.find(id=a['href'][1:]).find_parent(class_='mm-api') for a in links)
    pages_with_api = [f.name for f in site.glob('*.html') if page(site, f.name).select('div.mm-api h3')]
    assert len(pages_with_api) >= 18 and all(page(site, n).select_one('li.mm-toc-entry-points') for n in pages_with_api), pages_with_api
    bad = tmp_path/'site'
    shutil.copytree(site, bad)
    f = bad/'predict.html'
    f.write_text(f.read_text().replace('<h3 id="predict_manifest">predict_manifest', '<h3 id="predict_manifest">gone', 1))
    assert 'nbs/08_predict.ipynb: entry point predict_manifest has no API entry on predict.html' in nbdocs.check_site(bad)
