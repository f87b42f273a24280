"""The generated page (`bench/index.html`: inline SVG, no server, no scripts) and the tables
(`bench/LATEST.md`) drawn from the history.

Each figure is one small chart: one column per run (oldest left), every sample as a dot, the
median as a bar, the spread as a whisker; anchors measured in the same run (nginx, pyvips)
as a dashed line; a run that is worse than the previous comparable run beyond noise
(`stats.verdict`) is ringed in red, better in green.
"""

import html
import time
from collections import OrderedDict

from .history import BENCH, load
from .stats import median, verdict

SUITE_TITLES = OrderedDict([
    ("ir", ("Instructions (deterministic)", "User-space instructions counted by callgrind: per image for "
            "<code>moocard thumbnail</code> (all five sizes, start-up included) and per request on a keep-alive "
            "connection. Independent of machine load; the CI gate checks these (bench/gate).")),
    ("pipeline", ("Pipeline, timed", "Wall ms for the whole shared corpus, each round interleaved with in-process "
                  "pyvips (the anchor, dashed); ratio = geometric mean over images of moocard / pyvips.")),
    ("serve", ("Serving /avatar vs nginx", "shared/bench/serve-baseline.sh: wrk, 64 connections; pinned = server "
               "on CPU 0, wrk on CPU 1. nginx serving the same file in the same run is dashed.")),
    ("scale", ("Scalability", "Hot 200 at 1, 4, 16, 64 and 256 concurrent clients (wrk, both cores shared), "
               "nginx at every level in the same run.")),
    ("queue", ("Queue", "Upload to ready through the real upload service, SQLite queue and worker pool "
               "(e2e_latency), 1 and 2 workers; queue overhead with a no-op handler (queue_bench).")),
    ("reads", ("Public reads vs nginx", "Hot avatars at 128 and 512 px (serve-baseline.sh with our own output as "
               "the file), 2,000 distinct users (nginx: 2,000 files), and a new unknown hash per request with each "
               "<code>d=</code> (nginx: 404). Both cores shared, wrk -t2 -c64; goals dashed.")),
    ("outage", ("Store down", "serve_bench on MariaDB, which is stopped under load: p99 and wrong answers per kind "
                "of request, RSS after a 60 s unknown-hash flood, real avatars still served afterwards.")),
])
COLORS = {"nginx": "#7a7a7a", "pyvips": "#7a7a7a", "parity": "#b0b0b0", "nginx_404": "#7a7a7a",
          "goal": "#c0392b"}
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 330, 170, 56, 44, 22, 34


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.4g}G"
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def previous_comparable(points, i):
    """The latest earlier run of the same mode and build profile on the same CPU model."""
    p = points[i]
    for q in reversed(points[:i]):
        if (q["mode"], q["profile"], q["machine"].get("cpu")) == (p["mode"], p["profile"], p["machine"].get("cpu")):
            return q
    return None


def judge(points):
    out = []
    for i, p in enumerate(points):
        q = previous_comparable(points, i)
        out.append(verdict(q["samples"], p["samples"], p["better"], exact=p["kind"] == "ir") if q else None)
    return out


def chart(points):
    verdicts = judge(points)
    vals = [v for p in points for v in p["samples"]]
    for p in points:
        for a in p["anchors"].values():
            vals += a
    lo, hi = min(vals), max(vals)
    if hi == lo:
        lo, hi = lo * 0.95, hi * 1.05 + 1e-9
    span = hi - lo
    lo, hi = max(0, lo - span * 0.12) if lo >= 0 else lo - span * 0.12, hi + span * 0.12
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    n = len(points)
    x = lambda i: PAD_L + (i + 0.5) * pw / max(n, 1)  # noqa: E731
    y = lambda v: PAD_T + ph - (v - lo) / (hi - lo) * ph  # noqa: E731
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
         f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        s.append(f'<line x1="{PAD_L}" x2="{PAD_L + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                 f'<text x="{PAD_L - 4}" y="{y(v) + 3:.1f}" font-size="9" text-anchor="end" fill="#555">{fmt(v)}</text>')
    names = sorted({a for p in points for a in p["anchors"]})
    for a in names:
        pts = [(x(i), y(median(p["anchors"][a]))) for i, p in enumerate(points) if p["anchors"].get(a)]
        if len(pts) == 1:
            pts = [(PAD_L, pts[0][1]), (PAD_L + pw, pts[0][1])]
        c = COLORS.get(a, "#7a7a7a")
        s.append('<polyline fill="none" stroke="{}" stroke-dasharray="4 3" points="{}"/>'.format(
            c, " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)))
        s.append(f'<text x="{PAD_L + pw + 3}" y="{pts[-1][1] + 3:.1f}" font-size="9" fill="{c}">{html.escape(a)}</text>')
    for i, (p, v) in enumerate(zip(points, verdicts)):
        cx = x(i)
        smp = p["samples"]
        m = median(smp)
        hollow = p["mode"] != "full"
        tip = (f"{p['short']}{' (dirty)' if p.get('dirty') else ''} {p['subject']}\nrun {p['date']} ({p['mode']}, "
               f"{p['profile']} build), "
               f"load {p['load'][0]:.1f}\n{p['machine'].get('cpu', '')}\nmedian {fmt(m)} {p['unit']}; samples "
               + ", ".join(fmt(t) for t in smp)
               + "".join(f"\n{a}: median {fmt(median(av))}" for a, av in p["anchors"].items()))
        if v and v["change"] != "same":
            tip += f"\n{v['change']} than previous: x{v['ratio']:.3f}"
            if v["ci"]:
                tip += f" (95% CI {v['ci'][0]:.3f}-{v['ci'][1]:.3f}, Mann-Whitney p={v['p']:.2g})"
        s.append(f"<g><title>{html.escape(tip)}</title>")
        if len(smp) > 1:
            s.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(min(smp)):.1f}" y2="{y(max(smp)):.1f}" stroke="#3465a4"/>')
        for j, t in enumerate(smp):
            jx = cx + (j - (len(smp) - 1) / 2) * 3
            s.append(f'<circle cx="{jx:.1f}" cy="{y(t):.1f}" r="2" fill="#3465a4" fill-opacity="0.5"/>')
        s.append(f'<line x1="{cx - 7:.1f}" x2="{cx + 7:.1f}" y1="{y(m):.1f}" y2="{y(m):.1f}" stroke="#204a87" '
                 f'stroke-width="{1.5 if hollow else 3}"/>')
        if v and v["change"] != "same":
            c = "#cc0000" if v["change"] == "worse" else "#2e8b57"
            s.append(f'<circle cx="{cx:.1f}" cy="{y(m):.1f}" r="9" fill="none" stroke="{c}" stroke-width="2"/>'
                     f'<text x="{cx:.1f}" y="{PAD_T - 6}" font-size="9" text-anchor="middle" fill="{c}">'
                     f'{(v["ratio"] - 1) * 100:+.1f}%</text>')
        s.append(f'<rect x="{cx - pw / max(n, 1) / 2:.1f}" y="{PAD_T}" width="{pw / max(n, 1):.1f}" height="{ph}" '
                 f'fill="transparent"/></g>')
        s.append(f'<text x="{cx:.1f}" y="{H - PAD_B + 12}" font-size="9" text-anchor="middle" '
                 f'font-family="monospace" fill="#333">{p["short"]}{"*" if hollow else ""}</text>')
        s.append(f'<text x="{cx:.1f}" y="{H - PAD_B + 23}" font-size="8" text-anchor="middle" fill="#888">'
                 f'{p["date"][5:10]} L{p["load"][0]:.0f}</text>')
    s.append("</svg>")
    return "".join(s), verdicts[-1] if verdicts else None


def by_figure(recs):
    figs = OrderedDict()
    for r in recs:
        figs.setdefault(r["suite"], OrderedDict()).setdefault(r["figure"], []).append(r)
    return figs


def card(name, points):
    svg, last = chart(points)
    p = points[-1]
    cls = " worse" if last and last["change"] == "worse" else ""
    return (f'<div class="card{cls}"><div class="t">{html.escape(name)}</div>'
            f'<div class="u">{html.escape(p["unit"])}, {p["better"]} is better</div>{svg}</div>')


def write(recs=None, out=BENCH / "index.html", tables=BENCH / "LATEST.md"):
    recs = load() if recs is None else recs
    figs = by_figure(recs)
    runs = OrderedDict((r["run_id"], r) for r in recs)
    worse = [(f, pts[-1]) for s in figs.values() for f, pts in s.items() if (judge(pts)[-1] or {}).get("change") == "worse"]
    body = [f"<h1>moocard benchmarks</h1><p class=lead>Every figure across commits, from "
            f"<code>bench/history/*.jsonl</code>; {len(runs)} runs, {len(recs)} records. Generated "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by <code>bench/page</code> (also run by "
            f"<code>bench/run</code>). Hover a column for its commit, load and samples. Hollow bars and * = quick "
            f"runs. Red ring: worse than the previous run of the same mode on the same CPU beyond noise (bootstrap "
            f"95% interval of the median ratio excludes 1 and the change is at least 3%; instructions: any change); "
            f"green: better. Compare two commits in detail with <code>bench/compare A B</code>.</p>"]
    body.append("<p><b>Regressions in the latest runs:</b> " + (", ".join(
        f'<a href="#{html.escape(f)}">{html.escape(f)}</a> ({p["short"]})' for f, p in worse) or "none") + "</p>")
    for suite, figures in figs.items():
        title, desc = SUITE_TITLES.get(suite, (suite, ""))
        body.append(f"<h2>{html.escape(title)}</h2><p class=d>{desc}</p><div class=grid>")
        rest = []
        for f, pts in figures.items():
            (rest if f.startswith("pipeline.ms.") else body).append(f'<a id="{html.escape(f)}"></a>' + card(f, pts))
        body.append("</div>")
        if rest:
            body.append(f"<details><summary>per image ({len(rest)})</summary><div class=grid>{''.join(rest)}</div></details>")
    page = ("<!doctype html><meta charset=utf-8><title>moocard benchmarks</title><style>"
            "body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1440px}"
            "h2{margin-top:28px;border-bottom:1px solid #ddd}.lead,.d{color:#444;max-width:980px}"
            ".grid{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:6px;padding:6px;"
            "background:#fff}.card.worse{border-color:#c00;box-shadow:0 0 0 2px #fcc}.t{font:600 12px monospace}"
            ".u{font-size:11px;color:#666}code{background:#f3f3f3;padding:0 3px}</style>" + "".join(body))
    out.write_text(page)
    tables.write_text(latest_tables(figs))
    print(f"bench/page: wrote {out} and {tables}")


def latest_tables(figs):
    """Markdown: the latest full run of each figure with its spread and anchors."""
    lines = ["# Latest benchmark figures", "",
             "Generated by `bench/page` from `bench/history/` (do not edit; see [index.html](index.html) for every "
             "commit). Median (min-max) of the samples of the latest full run; anchors measured in the same run.", ""]
    for suite, figures in figs.items():
        title = SUITE_TITLES.get(suite, (suite, ""))[0]
        lines += [f"## {title}", "", "| figure | commit | median | min-max | n | anchor median | ratio | load |",
                  "|---|---|---|---|---|---|---|---|"]
        for f, pts in figures.items():
            full = [p for p in pts if p["mode"] == "full"] or pts
            p = full[-1]
            smp = p["samples"]
            anc = "; ".join(f"{a} {fmt(median(v))}" for a, v in p["anchors"].items() if a != "parity") or "-"
            first = next((median(v) for a, v in p["anchors"].items() if a != "parity"), None)
            ratio = f"{p['median'] / first:.2f}" if first else "-"
            lines.append(f"| `{f}` | {p['short']} | {fmt(p['median'])} {p['unit']} | {fmt(min(smp))}-{fmt(max(smp))} "
                         f"| {len(smp)} | {anc} | {ratio} | {p['load'][0]:.1f} |")
        lines.append("")
    return "\n".join(lines)
