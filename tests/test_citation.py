"CITATION.cff is valid CFF 1.2.0 as far as its required keys go, and agrees with settings.ini."
import configparser
import yaml


def test_citation_cff(root):
    cff = yaml.safe_load((root/'CITATION.cff').read_text())
    assert {'cff-version', 'message', 'title', 'authors'} <= set(cff), sorted(cff)
    assert cff['cff-version'] == '1.2.0'
    assert cff['authors'] and all(isinstance(a, dict) and ({'name'} & set(a) or {'family-names'} & set(a)) for a in cff['authors'])
    ini = configparser.ConfigParser(); ini.read(root/'settings.ini')
    s = ini['DEFAULT']
    assert (cff['title'], cff['version'], cff['repository-code']) == (s['title'], s['version'], s['git_url'])
    assert cff['authors'][0]['name'] == s['author'] and cff['license'] == {'apache2': 'Apache-2.0'}[s['license']]
