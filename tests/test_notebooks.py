"The notebooks read in order: every exported definition is followed, before the next export cell, by prose or a test; a long export cell holds one public definition; no function in mmsent/ runs past 60 lines."
import ast, json, re
from pathlib import Path

_DIRECTIVE = re.compile(r'#\|\s*([\w-]+)')
MAX_FUNCTION_LINES = 60
MAX_GROUP_LINES = 60   # an export cell longer than this holds one public definition (with its private helpers)


def cell_kind(cell:dict)->str:
    "'prose' (markdown with more than headings), 'export', 'skip' (hidden or default_exp), 'doc' (show_doc calls only) or 'code' (an example or a test)."
    src = ''.join(cell['source']).strip()
    if cell['cell_type'] == 'markdown':   # headings alone open the next section: they say nothing about the definition above
        return 'prose' if any(l.strip() and not l.startswith('#') for l in src.splitlines()) else 'skip'
    first = src.splitlines()[0] if src else ''
    m = _DIRECTIVE.match(first)
    if m and m.group(1) in ('export', 'exporti', 'exports'):
        body = ast.parse(src).body   # the import cell (imports, a logger) defines nothing to explain
        imports = body and isinstance(body[0], (ast.Import, ast.ImportFrom)) and not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in body)
        return 'skip' if imports else 'export'
    if m and m.group(1) in ('hide', 'default_exp'): return 'skip'
    if all(l.startswith('show_doc(') or not l.strip() for l in src.splitlines()): return 'doc'
    return 'code'


def unexplained_exports(nb:dict)->list[int]:
    "Indexes of export cells with neither prose nor a code cell after them before the next export cell."
    kinds = [cell_kind(c) for c in nb['cells']]
    bad = []
    for i, k in enumerate(kinds):
        if k != 'export': continue
        nxt = next((x for x in kinds[i+1:] if x in ('prose', 'code', 'export')), None)
        if nxt in (None, 'export'): bad.append(i)
    return bad


def crowded_exports(nb:dict, limit:int=MAX_GROUP_LINES)->list[int]:
    "Indexes of export cells longer than `limit` lines that define more than one public function or class."
    bad = []
    for i, c in enumerate(nb['cells']):
        if cell_kind(c) != 'export': continue
        src = ''.join(c['source'])
        public = [n.name for n in ast.parse(src).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not n.name.startswith('_')]
        if len(src.splitlines()) > limit and len(public) > 1: bad.append(i)
    return bad


def long_functions(path:Path, limit:int=MAX_FUNCTION_LINES)->list[str]:
    "`name (N lines)` for each function or method of a module longer than `limit` lines."
    tree = ast.parse(path.read_text())
    return [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > limit]


def test_checker_can_fail():
    md = lambda s: dict(cell_type='markdown', source=[s])
    code = lambda s: dict(cell_type='code', source=[s])
    nb = dict(cells=[code('#| export\nimport os'), md('## A'), code('#| export\ndef f(): pass'), code('show_doc(f)'), code('#| export\ndef g(): pass'), md('g does ...'),
                     code('#| export\ndef h(): pass'), code('test_eq(h(), None)'), code('#| export\ndef k(): pass'), md('## Next'),
                     code('#| export\ndef m(): pass'), code('#| hide\nimport nbdev')])
    assert unexplained_exports(nb) == [2, 8, 10]


def test_every_export_is_followed_by_prose_or_a_test(root):
    bad = {p.name: unexplained_exports(json.loads(p.read_text())) for p in sorted((root/'nbs').glob('*.ipynb')) if not p.name.startswith('_')}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"export cells (by index) with no prose or test before the next export cell: {bad}"


def test_long_export_cells_hold_one_definition(root):
    code = lambda s: dict(cell_type='code', source=[s])
    body = '    x = 1\n'*60
    nb = dict(cells=[code('#| export\ndef f():\n' + body + 'def _h(): pass'), code('#| export\ndef f():\n' + body + 'def g(): pass'),
                     code('#| export\ndef f(): pass\ndef g(): pass')])
    assert crowded_exports(nb) == [1]
    bad = {p.name: crowded_exports(json.loads(p.read_text())) for p in sorted((root/'nbs').glob('*.ipynb')) if not p.name.startswith('_')}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"export cells (by index) over {MAX_GROUP_LINES} lines with more than one public definition: split them, each part with prose and a test: {bad}"


def test_functions_fit_in_a_reader_s_head(root, tmp_path):
    long = tmp_path/'long.py'
    long.write_text('def f():\n' + '    x = 1\n'*61)
    assert long_functions(long) == ['f (62 lines)']
    bad = {p.name: long_functions(p) for p in sorted((root/'mmsent').rglob('*.py'))}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"functions longer than {MAX_FUNCTION_LINES} lines: {bad}"
