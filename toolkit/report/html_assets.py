"""The static parts of report.html: styles and the small inline script.

Kept apart from the page builder so the Python that lays out data stays short; kept as Python
strings (not package data files) so the page can never lose its styling to a packaging slip.
"""
from __future__ import annotations

STYLE = """
:root { --ink: #1d2433; --muted: #667085; --line: #e4e7ec; --panel: #f8f9fb; --accent: #3b6fb6;
        --good: #1f7a4d; --bad: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 60px; }
h1 { font-size: 1.6rem; margin: 0 0 12px; }
h2 { font-size: 1.2rem; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 0 0 6px; }
.muted { color: var(--muted); }
.summary { display: flex; flex-wrap: wrap; gap: 10px 28px; margin: 0; padding: 14px 18px;
           background: var(--panel); border: 1px solid var(--line); border-radius: 10px; }
.summary dt { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.summary dd { margin: 0; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--line); border-left: 4px solid var(--good); border-radius: 10px;
        padding: 12px 16px; background: #fff; }
.card.none { border-left-color: var(--bad); }
.card .pick { font-family: ui-monospace, Menlo, Consolas, monospace; font-weight: 700; margin: 0 0 4px; }
.card p { margin: 0; font-size: .9rem; }
.findings li { margin: 4px 0; }
.legend { display: flex; flex-wrap: wrap; gap: 16px; font-size: .85rem; color: var(--muted); margin-bottom: 8px; }
.legend i { display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 6px;
            vertical-align: -1px; }
.legend i.hollow { border: 2px solid var(--muted); background: #fff; }
.target-plots { margin: 0 0 22px; }
.target-plots .pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 14px; }
.target-plots figcaption { font-size: .8rem; color: var(--muted); margin-top: 4px; }
svg.plot { width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 10px; }
svg.plot .plot-title { font-size: 13px; font-weight: 600; fill: var(--ink); }
svg.plot .axis-label { font-size: 11px; fill: var(--muted); }
svg.plot .tick { font-size: 10px; fill: var(--muted); }
svg.plot .grid { stroke: #eef0f3; }
svg.plot .frame { fill: none; stroke: #cfd4dc; }
svg.plot .frontier-line { fill: none; stroke: #1d2433; stroke-width: 1.2; stroke-dasharray: 4 3; opacity: .6; }
svg.plot circle { stroke-width: 1.8; }
svg.plot .ring { fill: none; stroke: #1d2433; stroke-width: 1.6; }
svg.plot .ci { stroke-width: 1.5; opacity: .55; }
svg.plot .point-label { font-size: 10px; fill: var(--ink); paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg.plot g.point:hover circle:not(.ring) { stroke-width: 3.5; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 10px; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; }
th, td { padding: 6px 8px; text-align: left; white-space: nowrap; border-bottom: 1px solid var(--line); }
th { white-space: normal; vertical-align: bottom; }
td .ci { color: var(--muted); font-size: .78rem; }
th { position: sticky; top: 0; background: var(--panel); cursor: pointer; user-select: none; font-weight: 600; }
th[aria-sort=ascending]::after { content: " \\25B2"; font-size: .7em; }
th[aria-sort=descending]::after { content: " \\25BC"; font-size: .7em; }
td:last-child { white-space: normal; min-width: 110px; color: var(--muted); font-size: .8rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { color: var(--bad); font-weight: 600; }
tbody tr:nth-child(even) { background: #fcfcfd; }
tbody tr:hover { background: #eef4fb; }
tr.best { background: #ecf8f1 !important; }
.tag { font-size: .7rem; font-weight: 700; color: #fff; background: var(--good); border-radius: 4px;
       padding: 1px 6px; margin-left: 6px; }
.compat { margin-bottom: 10px; border: 1px solid var(--line); border-radius: 10px; padding: 8px 14px; }
.compat summary { cursor: pointer; }
.compat ul { margin: 4px 0; padding-left: 20px; }
.compat .details { color: var(--muted); font-size: .85rem; }
.ok, .no { font-size: .72rem; font-weight: 700; border-radius: 4px; padding: 1px 6px; color: #fff; }
.ok { background: var(--good); }
.no { background: var(--bad); }
"""

# Records any script error on the page itself, so a headless check can read it from the DOM.
ERROR_TRAP = ("<script>window.addEventListener('error',function(e){var d=document.documentElement;"
              "d.dataset.errors=(d.dataset.errors||'')+e.message+';';});</script>")

# Click-to-sort table, then a self-check that the table and plots are there.
SCRIPT = """
(function () {
  function value(row, col, numeric) {
    var raw = row.cells[col].getAttribute('data-sort');
    if (!numeric) return raw.toLowerCase();
    return raw === '' ? null : parseFloat(raw);
  }
  function order(x, y) {
    if (x === y) return 0;
    if (x === null) return 1;   // unmeasured values sink in both directions
    if (y === null) return -1;
    return x < y ? -1 : 1;
  }
  document.querySelectorAll('table.sortable th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var table = th.closest('table'), body = table.tBodies[0];
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      var numeric = th.dataset.type === 'num';
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = value(a, col, numeric), y = value(b, col, numeric);
        if (x === null || y === null) return order(x, y);
        return order(x, y) * (ascending ? 1 : -1);
      });
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  var expected = parseInt(document.body.dataset.expectedRows, 10);
  var rows = document.querySelectorAll('#results tbody tr').length;
  var markers = document.querySelectorAll('svg.plot circle').length;
  document.body.dataset.rendered = rows === expected && (expected === 0 || markers > 0)
    ? 'ok' : 'broken: ' + rows + ' of ' + expected + ' rows, ' + markers + ' plot markers';
})();
"""
