// mmsent offline docs (tools/nbdocs.py): KaTeX for the math spans, search over search-index.js with MiniSearch, the menu
// button that opens the sidebar on narrow screens, and copy buttons on code blocks.
// Everything loads with <script> tags, never fetch(), so the site works opened from disk (file://).
(function () {
  'use strict';
  var root = document.body.getAttribute('data-root') || '';

  function renderMath() {
    if (!window.katex) return;
    document.querySelectorAll('span.math').forEach(function (el) {
      var display = el.classList.contains('display');
      var tex = el.textContent.trim().replace(/^\\[(\[]/, '').replace(/\\[)\]]$/, '');
      try { katex.render(tex, el, { displayMode: display, throwOnError: false }); } catch (e) { /* leave the TeX */ }
    });
  }

  var loading = null, mini = null;
  function loadScript(src) {
    return new Promise(function (ok, fail) {
      var s = document.createElement('script'); s.src = root + src; s.onload = ok; s.onerror = fail; document.head.appendChild(s);
    });
  }
  function loadIndex() {
    if (!loading) loading = Promise.all([loadScript('assets/minisearch/minisearch.js'), loadScript('search-index.js')]).then(function () {
      mini = new MiniSearch({ fields: ['title', 'page', 'text'], storeFields: ['href', 'title', 'page', 'text'],
        searchOptions: { boost: { title: 3, page: 1.5 }, prefix: true, fuzzy: 0.15, combineWith: 'AND' } });
      mini.addAll(window.MMSENT_SEARCH_DOCS || []);
    });
    return loading;
  }
  function esc(s) { return s.replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; }); }
  function snippet(text, terms) {
    var low = text.toLowerCase(), at = -1;
    terms.forEach(function (t) { var i = low.indexOf(t.toLowerCase()); if (i >= 0 && (at < 0 || i < at)) at = i; });
    var start = Math.max(0, at - 60), s = (start ? '…' : '') + text.slice(start, start + 180) + (start + 180 < text.length ? '…' : '');
    var out = esc(s);
    terms.forEach(function (t) {
      if (t.length < 2) return;
      out = out.replace(new RegExp('(^|[^A-Za-z0-9])(' + t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + ')', 'gi'), '$1<mark>$2</mark>');   // at word starts
    });
    return out;
  }
  function setupSearch() {
    var input = document.getElementById('mm-search-input'), box = document.getElementById('mm-search-results');
    if (!input || !box) return;
    var active = -1;
    function show(q) {
      if (!q.trim()) { box.hidden = true; return; }
      var hits = mini.search(q).slice(0, 12);
      if (!hits.length) hits = mini.search(q, { combineWith: 'OR' }).slice(0, 12);
      box.innerHTML = hits.length ? hits.map(function (h) {
        return '<a href="' + esc(root + h.href) + '"><span class="mm-hit-title">' + esc(h.title) + '</span>' +
          (h.title !== h.page ? '<span class="mm-hit-page">' + esc(h.page) + '</span>' : '') +
          '<div class="mm-hit-text">' + snippet(h.text, h.terms) + '</div></a>';
      }).join('') : '<div class="mm-none">No results for “' + esc(q) + '”</div>';
      box.hidden = false; active = -1;
    }
    input.addEventListener('focus', loadIndex);
    input.addEventListener('input', function () { var q = input.value; loadIndex().then(function () { if (input.value === q) show(q); }); });
    input.addEventListener('keydown', function (e) {
      var links = box.querySelectorAll('a');
      if (e.key === 'Escape') { box.hidden = true; input.blur(); return; }
      if (!links.length) return;
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        active = (active + (e.key === 'ArrowDown' ? 1 : links.length - 1)) % links.length;
        links.forEach(function (a, i) { a.classList.toggle('mm-active', i === active); });
      } else if (e.key === 'Enter') { e.preventDefault(); window.location.href = links[Math.max(active, 0)].href; }
    });
    document.addEventListener('click', function (e) { if (!e.target.closest('.mm-search')) box.hidden = true; });
    document.addEventListener('keydown', function (e) {
      if (e.key === '/' && document.activeElement !== input && !/input|textarea/i.test(document.activeElement.tagName)) { e.preventDefault(); input.focus(); }
    });
  }
  function setupMenu() {
    var button = document.querySelector('.mm-menu'), side = document.getElementById('mm-side');
    if (!button || !side) return;
    function open(yes) { document.body.classList.toggle('mm-nav-open', yes); button.setAttribute('aria-expanded', String(yes)); }
    button.addEventListener('click', function (e) { e.stopPropagation(); open(!document.body.classList.contains('mm-nav-open')); });
    document.addEventListener('click', function (e) {
      if (document.body.classList.contains('mm-nav-open') && !e.target.closest('#mm-side')) open(false);
    });
    document.addEventListener('keydown', function (e) { if (e.key === 'Escape') open(false); });
    var inline = document.querySelector('.mm-toc-inline');   // the collapsed contents list closes once a heading is chosen
    if (inline) inline.addEventListener('click', function (e) { if (e.target.closest('a')) inline.open = false; });
  }
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (ok, fail) {   // file:// pages: the older way, through a hidden text area
      var area = document.createElement('textarea');
      area.value = text; area.setAttribute('readonly', ''); area.style.position = 'fixed'; area.style.opacity = '0';
      document.body.appendChild(area); area.select();
      var done = false;
      try { done = document.execCommand('copy'); } catch (e) { done = false; }
      document.body.removeChild(area);
      if (done) ok(); else fail(new Error('copy refused'));
    });
  }
  function setupCopy() {
    document.querySelectorAll('.jp-InputArea-editor pre, .jp-RenderedMarkdown pre').forEach(function (pre) {
      var box = pre.closest('.jp-InputArea-editor');
      if (!box) { box = document.createElement('div'); pre.parentNode.insertBefore(box, pre); box.appendChild(pre); }
      box.classList.add('mm-copyable');
      var button = document.createElement('button');
      button.type = 'button'; button.className = 'mm-copy'; button.textContent = 'Copy'; button.setAttribute('aria-label', 'Copy the code');
      button.addEventListener('click', function () {
        copyText(pre.innerText.replace(/\n$/, '')).then(function () { button.textContent = 'Copied'; },
                                                          function () { button.textContent = 'Select and copy'; });
        setTimeout(function () { button.textContent = 'Copy'; }, 2000);
      });
      box.appendChild(button);
    });
  }
  function init() { renderMath(); setupSearch(); setupMenu(); setupCopy(); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
