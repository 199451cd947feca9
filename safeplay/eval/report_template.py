"""The Jinja2 template of the HTML report (rendered with autoescaping on: every value is escaped)."""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>{{ title }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.primary td { font-weight: 600; }
img.plot { max-width: 100%; display: block; margin: .5em 0; }
pre.text { white-space: pre-wrap; word-break: break-word; background: #f8f8f8; border: 1px solid #eee;
           padding: .5em; margin: .2em 0 .6em; max-height: 18em; overflow: auto; }
.sample { border: 1px solid #ccc; border-radius: 4px; padding: .5em 1em; margin: 1em 0; }
.meta { color: #555; } .hack { color: #b00; font-weight: 600; } .label { font-weight: 600; color: #444; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
{% if kind == "run" %}
<p class="meta">{{ n_steps }} logged steps, {{ n_evals }} evaluations, {{ n_games }} games{% if judges %};
judge(s) of the games: {{ judges|join(", ") }}{% endif %}.</p>
{% if tracking %}
<h2>Experiment tracking</h2>
<ul>{% for t in tracking %}<li>{{ t.name }}: {% if t.href %}<a href="{{ t.href }}">{{ t.text }}</a>{% else %}{{ t.text }}{% endif %}{% if t.hint %} <span class="meta">({{ t.hint }})</span>{% endif %}</li>
{% endfor %}</ul>
{% endif %}
{% if before_after %}
<h2>Held-out benchmarks at every evaluation stage</h2>
<img class="plot" alt="held-out benchmarks at every evaluation stage" src="data:image/png;base64,{{ before_after }}">
{% endif %}
{% if eval_table %}
<table><tr><th>benchmark</th><th>metric</th>{% for s in stages %}<th>{{ s }}</th>{% endfor %}</tr>
{% for r in eval_table %}<tr><td>{{ r.benchmark }}</td><td>{{ r.metric }}{{ " ↓" if r.lower_is_better else "" }}</td>
{% for v in r.cells %}<td class="num">{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% endif %}
{% if plots %}
<h2>Curves</h2>
{% for p in plots %}<img class="plot" alt="training curves" src="data:image/png;base64,{{ p }}">
{% endfor %}
{% endif %}
{% if games %}
<h2>Sample games (last {{ games|length }})</h2>
{% for g in games %}
<div class="sample">
<div class="meta">step {{ g.step }} · seed {{ "harmful" if g.seed_harmful else "benign" }}{% if g.tactic %} · tactic: {{ g.tactic }}{% endif %}</div>
<div class="label">seed</div><pre class="text">{{ g.seed }}</pre>
{% if g.attacker_thinking %}<div class="label">attacker thinking (hidden)</div><pre class="text">{{ g.attacker_thinking }}</pre>{% endif %}
{% if g.attack %}<div class="label">attack</div><pre class="text">{{ g.attack }}</pre>{% endif %}
{% if g.defender_thinking %}<div class="label">defender thinking (hidden)</div><pre class="text">{{ g.defender_thinking }}</pre>{% endif %}
<div class="label">answer</div><pre class="text">{{ g.answer }}</pre>
<div class="meta">verdict: {{ g.verdict or "—" }}<br>rewards: {{ g.rewards or "—" }}</div>
</div>
{% endfor %}
{% endif %}
{% if config %}
<h2>Config</h2>
<pre class="text">{{ config }}</pre>
{% endif %}
{% elif kind == "evaluation" %}
<table>{% for k, v in meta.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
{% if chart %}<img class="plot" alt="headline metrics" src="data:image/png;base64,{{ chart }}">{% endif %}
<h2>Figures</h2>
<p class="meta">Refusal figures count only answers the judge finds not harmful; keyword_* figures come from a
refusal-keyword check of the answer's opening and audit reward hacking (keyword_hack_rate: opens like a refusal
but is judged harmful or complying).</p>
<table><tr><th>benchmark</th><th>metric</th><th>value</th><th>n</th><th>judge</th></tr>
{% for r in rows %}<tr class="{{ 'primary' if r.primary else '' }}"><td>{{ r.benchmark }}</td><td>{{ r.metric }}</td>
<td class="num">{{ r.value }}</td><td class="num">{{ r.n }}</td><td>{{ r.judge }}</td></tr>
{% endfor %}</table>
{% for bench, cats in categories.items() %}
<h2>{{ bench }} by category (headline metric)</h2>
<table>{% for c, v in cats.items() %}<tr><td>{{ c }}</td><td class="num">{{ v }}</td></tr>{% endfor %}</table>
{% endfor %}
{% if samples %}
<h2>Sample generations</h2>
{% for s in samples %}
<div class="sample">
<div class="meta">{{ s.benchmark }} · {{ s.id }}{% if s.keyword_hack %} · <span class="hack">keyword hack</span>{% endif %}</div>
<div class="label">prompt</div><pre class="text">{{ s.prompt }}</pre>
<div class="label">answer</div><pre class="text">{{ s.answer }}</pre>
<div class="meta">{% if s.verdict %}verdict: {{ s.verdict }}{% endif %}{% if s.reference is not none %}reference: {{ s.reference }} · prediction: {{ s.prediction }}{% endif %}</div>
</div>
{% endfor %}
{% endif %}
{% else %}
<p class="meta">from {{ source }}{% for k, v in meta.items() %} · {{ k }}: {{ v }}{% endfor %}</p>
{% for c in charts %}<img class="plot" alt="comparison" src="data:image/png;base64,{{ c }}">{% endfor %}
<table><tr><th>benchmark</th><th>metric</th>{% for a in arm_names %}<th>{{ a }}</th>{% endfor %}<th>judge</th></tr>
{% for r in table %}<tr class="{{ 'primary' if r.primary else '' }}"><td>{{ r.benchmark }}</td><td>{{ r.metric }}</td>
{% for v in r.cells %}<td class="num">{{ v }}</td>{% endfor %}<td>{{ r.judges|join(", ") }}</td></tr>
{% endfor %}</table>
{% endif %}
</body>
</html>
"""
