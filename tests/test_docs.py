"The offline docs site: a page per notebook, an API entry per exported symbol, no broken internal links."
import os
from pathlib import Path
import pytest
from bs4 import BeautifulSoup


@pytest.fixture(scope='module')
def site(root, nbdocs):
    "The built site in _docs/, (re)built here when missing or older than a notebook."
    os.chdir(root)
    out = root/'_docs'
    newest_nb = max(p.stat().st_mtime for p in (root/'nbs').rglob('*.ipynb'))
    if not (out/'index.html').exists() or (out/'index.html').stat().st_mtime < newest_nb: nbdocs.build_site(out)
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
    problems = nbdocs.check_site(bad)
    assert any('nowhere.html' in p for p in problems) and any('no-such-anchor' in p for p in problems), problems
