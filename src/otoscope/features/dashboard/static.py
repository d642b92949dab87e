"""The dashboard's one stylesheet and one script, written once to ``assets/`` and linked from every page.

Plain CSS and vanilla JavaScript, no CDN, nothing fetched: the pages work opened from disk (``file://``),
offline. The script only sorts and filters the index table; every figure is an image or inline SVG
written by Python, so pages read the same with scripts off.
"""

CSS = """
:root { --ink: #1d2330; --muted: #5b6477; --line: #e1e4ea; --accent: #c2410c; --link: #2956b2; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: var(--ink);
       background: #f6f7f9; font-size: 14px; line-height: 1.45; }
header { background: var(--ink); color: #fff; padding: 14px 28px; }
header h1 { margin: 0 0 2px 0; font-size: 20px; font-weight: 600; }
header p { margin: 0; color: #c9cfdb; font-size: 13px; }
header a { color: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 10px 28px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin: 14px 0; }
h2 { font-size: 16px; margin: 0 0 8px 0; }
h3 { font-size: 14px; margin: 12px 0 6px 0; color: var(--muted); font-weight: 600; }
a { color: var(--link); text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #eceef3; padding: 4px 9px; text-align: right; white-space: nowrap; }
th { background: #f0f2f6; position: sticky; top: 0; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable::after { content: " \\2195"; color: #9aa3b5; }
th.asc::after { content: " \\2191"; color: var(--ink); }
th.desc::after { content: " \\2193"; color: var(--ink); }
td.text, th.text { text-align: left; white-space: normal; max-width: 420px; overflow-wrap: anywhere; }
tbody tr:hover { background: #fafbfd; }
.stats { display: flex; flex-wrap: wrap; gap: 8px 26px; margin: 4px 0; }
.stats div { font-size: 13px; color: var(--muted); }
.stats b { display: block; font-size: 18px; color: var(--ink); font-weight: 600; }
.explanation { font-size: 15px; background: #fff7ed; border-left: 4px solid var(--accent); padding: 6px 12px; margin: 8px 0; }
.note { color: var(--muted); font-size: 12.5px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 12px; }
.cards.small { grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); }
figure.snip { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px; background: #fcfcfd; }
.spec { position: relative; width: 100%; aspect-ratio: 5 / 2; background: #000; border-radius: 3px; overflow: hidden; }
.spec img { position: absolute; inset: 0; width: 100%; height: 100%; image-rendering: pixelated; }
.spec svg { position: absolute; inset: 0; width: 100%; height: 100%; }
.trace { fill: none; stroke: #5eead4; stroke-width: 2; vector-effect: non-scaling-stroke; }
.centre { stroke: #fff; stroke-width: 1; stroke-dasharray: 3 3; vector-effect: non-scaling-stroke; opacity: .8; }
figure.snip audio { width: 100%; height: 30px; margin-top: 4px; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 2px; overflow-wrap: anywhere; }
figcaption b { color: var(--ink); }
.quantiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px 18px; }
.quantile .range { font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
.grid2 > section { margin: 0; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.bar { fill: var(--accent); }
.axis { stroke: #9aa3b5; stroke-width: 1; }
.tick { font-size: 11px; fill: var(--muted); }
.word { fill: #eef2ff; stroke: #c7d2fe; }
.wordtext { font-size: 11px; fill: var(--ink); }
.changed { color: var(--accent); font-weight: 600; }
.pill { display: inline-block; background: #eef2ff; border-radius: 10px; padding: 0 7px; margin: 1px 2px; font-size: 12px; }
input.filter { font-size: 14px; padding: 5px 9px; width: 340px; border: 1px solid #c9cfdb; border-radius: 6px; }
.tablewrap { max-height: 75vh; overflow: auto; margin-top: 8px; }
.count { color: var(--muted); font-size: 13px; margin-left: 10px; }
details { margin-top: 8px; font-size: 13px; }
details a { margin-right: 12px; }
.heat { width: 100%; height: auto; display: block; }
svg a text.tick { fill: var(--link); }
"""

FIGURE_CSS = """
svg.heat { width: 100%; height: auto; display: block; margin: 6px 0; }
svg.heat text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
svg.heat .axis { stroke: #9aa3b5; stroke-width: 1; }
svg.heat .tick { font-size: 11px; fill: #5b6477; }
svg.heat .word { fill: #eef2ff; stroke: #c7d2fe; }
svg.heat .wordtext { font-size: 11px; fill: #1d2330; }
svg.heat a text.tick { fill: #2956b2; }
"""
"""The figure rules alone, for pages that have their own stylesheet (the report's feature section)."""

JS = """
(function () {
  var table = document.getElementById('latents');
  if (!table) return;
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function value(row, col, numeric) {
    var cell = row.cells[col];
    var raw = cell.getAttribute('data-v');
    if (raw === null) raw = cell.textContent;
    if (!numeric) return raw.toLowerCase();
    var x = parseFloat(raw);
    return isNaN(x) ? -Infinity : x;
  }
  function sortBy(col) {
    var head = heads[col];
    var numeric = head.getAttribute('data-type') === 'num';
    var asc = !head.classList.contains('desc') && head.classList.contains('asc') ? false :
              (head.classList.contains('desc') ? true : !numeric);
    for (var i = 0; i < heads.length; i++) heads[i].classList.remove('asc', 'desc');
    head.classList.add(asc ? 'asc' : 'desc');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, col, numeric), y = value(b, col, numeric);
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  for (var i = 0; i < heads.length; i++) {
    (function (col) {
      heads[col].classList.add('sortable');
      heads[col].addEventListener('click', function () { sortBy(col); });
    })(i);
  }
  var filter = document.getElementById('filter');
  var count = document.getElementById('count');
  function apply() {
    var terms = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (r) {
      var text = r.textContent.toLowerCase();
      var ok = terms.every(function (t) { return text.indexOf(t) >= 0; });
      r.style.display = ok ? '' : 'none';
      if (ok) shown++;
    });
    count.textContent = shown + ' of ' + body.rows.length + ' latents';
  }
  if (filter) { filter.addEventListener('input', apply); apply(); }
})();
"""
