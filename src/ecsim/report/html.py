"""HTML for the report: plain strings, every value escaped, figures as data URIs, no scripts."""

from __future__ import annotations

import base64
from html import escape

from ..report_text import mean_ci, paired_ci, replicate_size
from ..uncertainty.model import split_key
from .figures import answer_intervals

SECTIONS = ("answer", "patients", "trial", "adverse", "drug-levels", "target-engagement", "tone", "circuit", "symptoms",
            "scales", "uncertainty", "claims", "validation", "parameters", "citations", "provenance")

HEADLINE = {"supported": "Yes, in this model", "partly supported": "Only partly",
            "not supported": "No, not at these doses", "unknown": "We don't know"}

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2430;max-width:1100px;margin:0 auto;padding:24px;background:#fafbfc}
h1{font-size:1.7em;margin-bottom:.2em} h2{margin-top:2em;border-bottom:2px solid #e3e7ee;padding-bottom:.2em}
.sub{color:#5b6573} .box{background:#fff;border:1px solid #e3e7ee;border-radius:10px;padding:16px 20px;margin:14px 0}
.answer{border-left:6px solid #3b6fd8} .warn{border-left:6px solid #d89a3b;background:#fffaf2}
table{border-collapse:collapse;width:100%;font-size:.9em;background:#fff} th,td{border-bottom:1px solid #e8ebf0;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f1f4f8} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.v{display:inline-block;border-radius:12px;padding:1px 10px;font-size:.85em;font-weight:600;white-space:nowrap}
.v-supported{background:#dff3e4;color:#1d6b34} .v-partly{background:#fff1cc;color:#7a5a00}
.v-not{background:#fbe0e0;color:#9b1c1c} .v-unknown{background:#e3ebfb;color:#23418a}
.pass{color:#1d6b34;font-weight:600} .miss{color:#9b1c1c;font-weight:600}
figure{margin:10px 0} figure img{max-width:100%;border:1px solid #e3e7ee;border-radius:6px;background:#fff}
figcaption{color:#5b6573;font-size:.88em} details{margin:8px 0} summary{cursor:pointer;font-weight:600}
.small{font-size:.85em;color:#5b6573} nav a{margin-right:12px}
"""


def e(x) -> str:
    return escape(str(x), quote=True)


def badge(verdict: str) -> str:
    cls = {"supported": "supported", "partly supported": "partly", "not supported": "not"}.get(verdict, "unknown")
    return f'<span class="v v-{cls}">{e(verdict)}</span>'


def fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


ci = mean_ci
SAME_PATIENTS = "same patients on both arms:"


def figure(fid: str, png: bytes | None, title: str, caption: str) -> str:
    if png is None:
        return (f'<section id="{fid}"><h3>{e(title)}</h3><p class="small">Not produced: this run has no '
                "clinical outcomes (no phenotype).</p></section>")
    data = base64.b64encode(png).decode()
    return (f'<section id="{fid}"><h3>{e(title)}</h3><figure><img alt="{e(title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{e(caption)}</figcaption></figure></section>")


def _claim(rows: list[dict], cid: str) -> dict | None:
    return next((r for r in rows if r["id"] == cid), None)


def answer(inp) -> str:
    trial = inp.summary.get("trial")
    efficacy = _claim(inp.claims, "cbd_helps_dystonia")
    verdict = efficacy["verdict"] if efficacy else "unknown"
    head = f"<p><strong>{e(HEADLINE[verdict])}.</strong> {badge(verdict)}</p>"
    if not trial:
        return (f'<div class="box answer" id="answer"><h2>Can CBD help with dystonia?</h2>{head}<p>This run has no '
                "virtual trial (no phenotype or control arm), so it cannot answer the efficacy question; "
                "run the default scenario (<code>ecsim run</code>) for that. Its drug levels, target engagement "
                "and the claims checker are below.</p></div>")
    scale, day, control = trial["primary_scale"], trial["primary_day"], trial["control_arm"]
    items = []
    for arm, a in trial["arms"].items():
        if arm == control or "difference_vs_control" not in a:
            continue
        rep = a.get("replicate_trials", {})
        share = (f"; {rep['share_significant']:.0%} of {rep['replicates']} replicate trials of "
                 f"{replicate_size(rep).replace('/', ' per ')} significant") if rep else ""
        items.append(f"<li><strong>{e(arm)}</strong>: {e(ci(a['difference_vs_control']))} points vs {e(control)}"
                     f"{e(paired_ci(a['difference_vs_control'], SAME_PATIENTS))}{e(share)}</li>")
    return (f'<div class="box answer" id="answer"><h2>Can CBD help with dystonia?</h2>{head}'
            f"<p>Virtual trial <em>{e(inp.scenario.name)}</em>: {inp.scenario.population.n} simulated patients "
            f"{_size_words(trial)} ({e(inp.scenario.population.phenotype)} dystonia). "
            f"Difference from {e(control)} in {e(scale)} at day {day:g}, mean [{_interval_words(trial)}] "
            "(negative = better):</p>"
            f"<ul>{''.join(items)}</ul>"
            f"<p>{e(efficacy['why'] if efficacy else '')}</p>"
            + _faults_note(inp) + _answer_uncertainty(inp) + "</div>")


def _faults_note(inp) -> str:
    """How many simulated patients and parameter draws were numerical faults (left out), if any."""
    faults = inp.summary.get("faults", {})
    draws = (inp.uncertainty or {}).get("draws_faulted", 0)
    parts = []
    if faults.get("patients_faulted"):
        reasons = "; ".join(f"{n} {e(faults['reasons'].get(k, k))}" for k, n in faults["by_reason"].items())
        parts.append(f"{faults['patients_faulted']} simulated patients were numerical faults ({reasons})")
    if draws:
        parts.append(f"{draws} of {inp.uncertainty['draws']} parameter draws gave non-finite answers")
    if not parts:
        return ""
    return (f"<p class='small'><strong>Left out:</strong> {'; '.join(parts)}. They are in no statistic here; "
            "summary.json lists them (<code>faults</code>).</p>")


def _answer_uncertainty(inp) -> str:
    unc = inp.uncertainty or {}
    answers = answer_intervals(unc)
    text = ("<p class='small'>Two kinds of uncertainty. <strong>How different patients respond</strong>: the "
            "confidence intervals above (over simulated patients), the replicate trials and, in the "
            "<a href='#uncertainty'>uncertainty</a> plot, the spread of each patient's own response. ")
    if not answers:
        return text + "How unsure the model is: not computed for this run.</p>"
    unit = next(iter(answers.values()))["unit"]
    what = ("change in the primary scale vs control, points (every item at its mean over raters)" if unit == "points"
            else "change in the affected regions' severity vs control, per cent")
    parts = "; ".join(f"{e(arm)} {v['median']:+.3g} [{v['p05']:+.3g}, {v['p95']:+.3g}]" for arm, v in answers.items())
    names = ", ".join(f"{e(d['parameter'])} (<a href='#ref-{e(d['source'])}'>{e(d['source'])}</a>, rho {d['score']:+.2f})"
                      if d["source"] in inp.registry.references else
                      f"{e(d['parameter'])} ({e(d['source'])}, rho {d['score']:+.2f})" for d in _top_drivers(unc))
    if unc.get("rho_noise_level"):
        names += f"; |rho| under about {unc['rho_noise_level']:.2f} is within sampling noise at this many draws"
    return (text + f"<strong>How unsure the model is about its drug layers</strong> (90 % interval over "
            f"{unc['draws']} draws of {unc['factors']} drug-layer parameters, typical patient; the circuit and "
            f"clinical parameters that turn CB1 signalling into symptoms are held here; <code>ecsim sensitivity "
            f"--joint</code> samples them, re-calibrated per draw): {what}: {parts}. "
            f"The parameters that move it most: {names}. See <a href='#uncertainty'>uncertainty</a>.</p>")


def _top_drivers(unc: dict, n: int = 3) -> list[dict]:
    """The answer's most influential parameters, for the arm with the widest interval."""
    answers = answer_intervals(unc)
    if not answers:
        return []
    widest = max(answers.values(), key=lambda v: v["p95"] - v["p05"])
    return unc.get("drivers", {}).get(widest["key"], [])[:n]


def uncertainty_section(inp, png) -> str:
    unc = inp.uncertainty or {}
    adverse = _adverse_intervals(inp)
    if not unc:
        return ('<section id="uncertainty"><h2>How unsure the model is</h2><p class="small">Not computed for this '
                "run (no CBD arm, or no parameter draws requested).</p>" + adverse + "</section>")
    rows = "".join(f"<tr><td>{e(split_key(k)[0])}</td><td>{e(split_key(k)[1])}</td><td class='num'>{fmt(v['median'], 4)}</td>"
                   f"<td class='num'>{fmt(v['p05'], 4)} – {fmt(v['p95'], 4)}</td></tr>" for k, v in unc["intervals"].items())
    noise = unc.get("rho_noise_level") or 0.0
    drivers = "".join(f"<li><strong>{e(d['parameter'])}</strong> ({e(d['description'])}; {d['value']:g} {e(d['unit'])}, "
                      f"uncertainty {e(_spread_text(d['uncertainty']))}): Spearman rho {d['score']:+.2f}"
                      + (f" (within sampling noise at {unc['draws']} draws: |rho| under {noise:.2f})"
                         if abs(d["score"]) < noise else "") + f". Source: {e(d['citation'])}</li>"
                      for d in _top_drivers(unc))
    img = figure("uncertainty-plot", png, "The answer with both kinds of spread",
                 "Left: each CBD arm's difference from the control arm on the trial's primary scale at the primary "
                 "visit, in points (negative = better). How different patients respond: grey, the 5th to 95th "
                 "percentile of each simulated patient's change on the arm minus the same patient's change on the "
                 "control arm (the arms share their virtual patients); black, the mean difference with the 95 % CI "
                 "a parallel trial of this size would report. How unsure the model is: blue, median and 90 % interval over the parameter draws "
                 "(typical patient, every scale item at its mean over raters). Dashed: the smallest change patients "
                 "notice (claims.yaml: 3 TWSTRS points, Parkinsonism Relat Disord 2018;52:94). Right: rank "
                 "correlation of each parameter's draw with the model's answer for the arm with the widest "
                 "interval.") if png else ""
    return (f'<section id="uncertainty"><h2>How unsure the model is</h2><p>{unc["draws"]} draws of the '
            f"{unc['factors']} parameters of the drug layers (products, absorption, PK, targets, tone) from their "
            "registry uncertainty ranges, each applied to the typical patient, so this spread is parameter "
            "uncertainty only. Circuit and clinical parameters are held at their calibrated values here; "
            "<code>ecsim sensitivity</code> varies them one at a time, and with <code>--joint</code> together with "
            "every other layer, each draw re-calibrated to the phenotype's calibration cases (docs/uncertainty.md). "
            "The three parameters "
            "whose uncertainty moves the answer most, i.e. what to measure next:</p>"
            f"<ol>{drivers}</ol>{img}{adverse}<details><summary>every headline output</summary><table><tr><th>arm</th>"
            f"<th>output</th><th>median</th><th>90 % interval</th></tr>{rows}</table></details>"
            "<p class='small'>Each claim's model verdict is checked against parameter uncertainty too (the claims "
            "table's numbers: <code>parameter_uncertainty</code>). Full Morris and Sobol analysis: "
            "<code>ecsim sensitivity</code>.</p></section>")


def _spread_text(u: dict) -> str:
    """A registry uncertainty entry in words: 'lognormal, CV 1.5 (unmeasured)'."""
    shape = {"lognormal": f"CV {u.get('cv')}", "normal": f"SD {u.get('sd')}",
             "uniform": f"{u.get('low')} to {u.get('high')}"}.get(u.get("distribution"), "")
    return f"{u.get('distribution')}, {shape}" + (f" ({u['basis']})" if u.get("basis") else "")


def _percent(x: float) -> str:
    """A risk as a per cent with two significant digits; under 0.01 % as such."""
    return "0" if x == 0 else ("<0.01" if 100 * x < 0.01 else f"{100 * x:.2g}")


def _adverse_intervals(inp) -> str:
    """The claims checker's adverse-effect numbers: per event and dose class of the article, the
    largest excess risk over the class's arms at the registry values, with its 90 % interval over
    draws of the adverse-effect parameters."""
    row = next((r for r in inp.claims if r["model"]["rule"] == "adverse"), None)
    numbers = (row or {}).get("model", {}).get("numbers", {})
    by_class = numbers.get("excess_risk_by_class")
    if not by_class or not numbers.get("parameter_draws"):
        return ""
    from ..claims import load_claims
    labels = {k: dc.label for k, dc in load_claims().dose_classes.items()}
    events = sorted({ev for c in by_class.values() for ev in c})

    def cell(x):
        if x is None:
            return "<td class='num'>–</td>"
        bounds = x.get("parameter_90pct")
        return (f"<td class='num'>+{e(_percent(x['excess_risk']))} %"
                + (f" [{e(_percent(bounds[0]))}, {e(_percent(bounds[1]))}]" if bounds else "") + "</td>")
    head = "".join(f"<th>{e(labels.get(k, k))}</th>" for k in by_class)
    body = "".join(f"<tr><td>{e(ev.replace('_', ' '))}</td>{''.join(cell(c.get(ev)) for c in by_class.values())}</tr>"
                   for ev in events)
    factors = numbers.get("parameter_factors")
    return ("<h3>Side effects</h3><p>Excess risk over the same patients without the drug, at the article's doses (the "
            "claims checker's simulated patients; each dose class's arm with the largest mean), with the 90 % "
            f"interval over {numbers['parameter_draws']} draws of "
            + (f"the {factors} " if factors else "the ") +
            "adverse-effect parameters (exposure-response and the THC threshold; the risks are algebraic in "
            "exposure, so the same patients serve every draw). Common starts at +1 % (CIOMS).</p>"
            f"<table><tr><th>event</th>{head}</tr>{body}</table>")


def patients(inp) -> str:
    """A plain-language summary, every sentence chosen by a verdict or built from a number."""
    parts = ["<p><strong>This is a computer model, not medical advice.</strong> Do not start, stop or change a "
             "treatment because of it; talk to your neurologist. CBD can change the levels of other medicines "
             "(for example clobazam) in your blood.</p>"]
    parts += [p for p in (_plain_trial(inp), _plain_enzymes(inp), _plain_thc(inp)) if p]
    return f'<div class="box warn" id="patients"><h2>In plain words</h2>{"".join(parts)}</div>'


def _plain_trial(inp) -> str:
    trial = inp.summary.get("trial")
    efficacy = _claim(inp.claims, "cbd_helps_dystonia")
    if not trial or not trial.get("control_arm"):
        return ""
    numbers = (efficacy or {}).get("model", {}).get("numbers", {})
    mic, cbd = numbers.get("minimal_important_change"), numbers.get("arms", {})
    diffs = {a: v["difference_vs_control"]["mean"] for a, v in trial["arms"].items() if "difference_vs_control" in v}
    text = (f"<p>We simulated {inp.scenario.population.n} people in each group for {inp.scenario.duration_days / 7:g} "
            f"weeks and compared each group with a dummy treatment ({e(trial['control_arm'])}) on the "
            f"{e(trial['primary_scale'])} scale. ")
    if mic:
        text += f"A change of about {mic:g} points is the smallest that patients notice. "
    if cbd:
        helped = [a for a, v in cbd.items() if v["verdict"] in ("supported", "partly supported")]
        if not helped:
            text += "In this model, <strong>none of the CBD products improved symptoms by an amount patients would notice</strong>. "
        else:
            text += "In this model, " + ", ".join(e(a) for a in helped) + " improved symptoms. "
    text += "; ".join(f"{e(a)}: {abs(d):.1f} points {'better' if d < 0 else 'worse'} than the dummy treatment"
                      for a, d in diffs.items()) + ".</p>"
    return text


def _plain_enzymes(inp) -> str:
    faah, magl = _claim(inp.claims, "cbd_lowers_faah"), _claim(inp.claims, "cbd_lowers_magl")
    if not faah or not magl:
        return ""
    share = {n: c["model"]["numbers"].get("by_dose", {}).get("consumer", {}).get("median") for n, c in
             (("FAAH", faah), ("MAGL", magl))}
    if None in share.values():
        return ""
    blocked = faah["model"]["verdict"] == "supported" or magl["model"]["verdict"] == "supported"
    amounts = " and ".join(f"{100 * v:.2g} % of {n}" for n, v in share.items())
    return ("<p>The article says CBD blocks the enzymes (FAAH and MAGL) that break down the body's own cannabinoids. "
            + ("In the model it does, at the doses people take: " if blocked else
               "In the model, at the doses people take (10-50 mg a day), CBD blocks only ")
            + f"{amounts}; a noticeable effect would need about half.</p>")


def _plain_thc(inp) -> str:
    thc = _claim(inp.claims, "non_psychoactive")
    if not thc:
        return ""
    n = thc["model"]["numbers"]
    worst = min(a["fraction_claim_holds"] for a in n["by_arm"].values())
    patients = min((a.get("patients", 0) for a in n["by_arm"].values()), default=0)
    tested = f"the claims checker's own {patients} simulated people per dose" if patients else "the claims checker's doses"
    return (f"<p>Full-spectrum oils contain some THC. At the consumer doses tested ({tested}, not this run's "
            f"arms: a small arm below can show a different share by chance), one dose carries less THC than "
            f"{n['threshold']:g} mg swallowed on an empty stomach (the smallest amount with a measurable effect on "
            f"the mind) for at least {100 * worst:.0f} % of people; a typical full-spectrum oil reaches that amount "
            f"at about {n['cbd_mg_per_dose_reaching_threshold_at_median_thc_ratio']:.0f} mg of CBD per dose, or "
            f"{n['cbd_mg_per_dose_reaching_threshold_at_median_thc_ratio_with_a_meal']:.0f} mg taken with food "
            "(a meal raises how much THC is absorbed).</p>")


_PARALLEL_NOTE = ("The difference's 95 % CI is what a parallel trial with this many patients per arm would report; "
                  "every arm holds the same virtual patients, and the paired interval (the mean of each patient's own "
                  "difference) says how precisely the run pins down the model's average effect.")
_CROSSOVER_NOTE = ("A crossover: each patient takes every treatment, one per period. For a pair of treatments "
                   "that two sequences hold in opposite orders (AB/BA) the difference is the Hills-Armitage "
                   "estimate and its 95 % CI (each patient's period-1 minus period-2 difference, compared between "
                   "the sequences); otherwise it is the mean within-patient difference and its t interval.")


def _crossover(trial: dict) -> bool:
    return trial.get("design") == "crossover"


def _hills_armitage_everywhere(trial: dict) -> bool:
    return all(c.get("hills_armitage") for c in trial.get("comparisons", {}).values())


def _size_words(trial: dict) -> str:
    return f"in {len(trial['sequences'])} sequences" if _crossover(trial) else "per arm"


def _interval_words(trial: dict) -> str:
    """What the headline's bracketed interval is, by design."""
    if not _crossover(trial):
        return "the 95 % CI a parallel trial of this size would report"
    if _hills_armitage_everywhere(trial):
        return "the Hills-Armitage 95 % CI of this crossover"
    return "the 95 % CI of this crossover: Hills-Armitage for an AB/BA pair, else of the within-patient difference"


def trial_table(inp) -> str:
    trial = inp.summary.get("trial")
    if not trial:
        return '<section id="trial"><h2>Trial results</h2><p class="small">No trial in this run.</p></section>'
    rows = []
    for arm, a in trial["arms"].items():
        diff = a.get("difference_vs_control")
        rep = a.get("replicate_trials", {})
        rows.append(f"<tr><td>{e(arm)}</td><td class='num'>{e(ci(a['change']))}</td>"
                    f"<td class='num'>{e(ci(diff)) + e(paired_ci(diff, SAME_PATIENTS)) if diff else 'control'}</td>"
                    f"<td class='num'>{'–' if a['responders'] is None else format(a['responders'], '.0%')}</td>"
                    f"<td class='num'>{(str(round(100 * rep['share_significant'])) + ' %') if rep else '–'}</td></tr>")
    return (f'<section id="trial"><h2>Trial results</h2><p>Primary scale <strong>{e(trial["primary_scale"])}</strong> '
            f"at day {trial['primary_day']:g}; responders: {e(trial.get('responder_definition', ''))}. "
            f"Placebo response {'included' if trial.get('placebo_response') else 'not included'}. "
            + (_CROSSOVER_NOTE if _crossover(trial) else _PARALLEL_NOTE) + "</p>"
            "<table><tr><th>arm</th><th>change from baseline (95 % CI)</th><th>difference vs control (95 % CI)</th>"
            "<th>responders</th><th>replicate trials significant</th></tr>" + "".join(rows) + "</table></section>")


def adverse_table(inp) -> str:
    """Each arm's mean risk of each modelled adverse effect, and its excess over control."""
    doc = inp.summary.get("adverse_effects") or {}
    if not doc:
        return ""
    events = list(next(iter(doc.values())))
    head = "".join(f"<th>{e(ev.replace('_', ' '))}</th>" for ev in events)

    def cell(row):
        extra = row.get("excess_vs_control")
        return f"<td class='num'>{row['mean']:.1%}" + (f" ({extra:+.1%})" if extra is not None else "") + "</td>"
    rows = "".join(f"<tr><td>{e(arm)}</td>{''.join(cell(r[ev]) for ev in events)}</tr>" for arm, r in doc.items())
    return ('<section id="adverse"><h2>Side effects</h2><p>Mean risk over the simulated patients of each arm '
            "(in brackets: the excess over the control arm) of each event. CBD's events, THC psychoactivity and "
            "worsened parkinsonism are over a course of about 14 weeks (the length of the trials the risks come "
            "from, whatever this run's length); opioid misuse and addiction and benzodiazepine dependence build up "
            "over this run's days. From each patient's own drug levels and dose: "
            "exposure-response fitted to the Epidiolex label's controlled trials, THC psychoactivity from the "
            "published lowest effective dose, worsened parkinsonism after Consroe 1986 (five patients: weak "
            "evidence; a risk only for patients with parkinsonian features, as in its two who worsened). "
            "Several inputs are assumptions; see docs/adverse.md for the sources and the "
            f"validation misses.</p><table><tr><th>arm</th>{head}</tr>{rows}</table></section>")


def claims_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        ev = "".join(f"<li>{badge(i['bearing'])} <em>{e(i['quality'])}</em>: {e(i['finding'])} "
                     f"<span class='small'>[{e(i['ref'])}, {e(i['locator'])}]</span></li>" for i in r["evidence"]["items"])
        body.append(f"<tr><td><strong>{e(r['claim'])}</strong><br><span class='small'>“{e(r['quote'])}” · "
                    f"{e(r['category'])}</span></td><td>{badge(r['verdict'])}</td>"
                    f"<td>{e(r['why'])}<details><summary>model numbers and evidence</summary>"
                    f"<p class='small'>Rule: {e(r['model']['rule'])} — {e(r['model']['threshold_reason'])}"
                    f"{(' Note: ' + e(r['model']['note'])) if r['model']['note'] else ''}</p>"
                    f"<pre class='small'>{e(_numbers(r['model']['numbers']))}</pre><ul>{ev}</ul></details></td></tr>")
    counts = ", ".join(f"{sum(r['verdict'] == v for r in rows)} {v}" for v in HEADLINE)
    return (f'<section id="claims"><h2>The article\'s claims</h2><p>{e(counts)}. Each verdict combines a rule applied '
            "to the model's numbers with the graded evidence; thresholds and their reasons are in "
            "claims.yaml (docs/claims.md).</p><table><tr><th>claim</th><th>verdict</th><th>why</th></tr>"
            + "".join(body) + "</table></section>")


def _numbers(numbers: dict) -> str:
    import json
    text = json.dumps(numbers, indent=1, default=str)
    return text if len(text) < 6000 else text[:6000] + "\n…"


def validation_table(snap: dict) -> str:
    status = ("matches the current default parameter set and case files" if snap.get("current") else
              "<strong>does not match the current default parameters or case files: rerun "
              "<code>python -m ecsim.validation.snapshot</code></strong>")
    if snap.get("run_overrides"):
        status += (f"; this run overrides {snap['run_overrides']} parameter(s), so its own model differs from the one "
                   "validated here")
    by_kind = {k: [r for r in snap["results"] if r["kind"] == k] for k in ("calibration", "validation")}
    counts = "; ".join(f"{k}: {sum(r['passed'] for r in v)} of {len(v)} within tolerance" for k, v in by_kind.items())
    rows = "".join(
        f"<tr><td>{e(r['id'])}</td><td>{e(r['kind'])}</td><td class='num'>{fmt(r['observed'], 4)}</td>"
        f"<td class='num'>{fmt(r['simulated'], 4)}</td><td>{e(r['tolerance'])}</td>"
        f"<td class='{'pass' if r['passed'] else 'miss'}'>{'pass' if r['passed'] else 'MISS'}</td></tr>"
        for r in snap["results"])
    return (f'<section id="validation"><h2>Validation against published studies</h2><p>{counts}. Calibration '
            "metrics were used to fit parameters; validation metrics never were. Misses are shown, not tuned "
            f"away. Snapshot of {e(snap['created'])}, which {status}.</p><details><summary>all "
            f"{len(snap['results'])} metrics</summary><table><tr><th>metric</th><th>kind</th><th>observed</th>"
            f"<th>simulated</th><th>tolerance</th><th>result</th></tr>{rows}</table></details></section>")


def parameters_table(registry) -> str:
    rows = "".join(
        f"<tr><td>{e(p.name)}</td><td class='num'>{p.value:.4g}</td><td>{e(p.unit)}</td><td>{e(p.species)}</td>"
        f"<td>{e(p.kind)}</td><td>{e(p.source)}</td><td>{e(p.uncertainty.describe())}</td></tr>"
        for p in registry.parameters.values())
    return (f'<section id="parameters"><h2>Parameters</h2><p>{len(registry.parameters)} parameters, each with unit, '
            f"species, source and uncertainty (parameter set {e(registry.digest())}).</p><details><summary>show all"
            "</summary><table><tr><th>name</th><th>value</th><th>unit</th><th>species</th><th>kind</th><th>source</th>"
            f"<th>uncertainty</th></tr>{rows}</table></details></section>")


def citations(inp) -> str:
    keys = {p.source for p in inp.registry.parameters.values()} - {"assumption"}
    keys |= {i["ref"] for r in inp.claims for i in r["evidence"]["items"]}
    refs = [inp.registry.references[k] for k in sorted(keys) if k in inp.registry.references]
    items = "".join(f"<li id='ref-{e(r.key)}'><strong>[{e(r.key)}]</strong> {e(r.citation)}. "
                    f"{e('doi:' + r.doi if r.doi else ('PMID ' + r.pmid if r.pmid else r.url))} "
                    f"<span class='small'>({e(r.checked)})</span></li>" for r in refs)
    return f'<section id="citations"><h2>Citations</h2><ol class="small">{items}</ol></section>'


def provenance(inp) -> str:
    m = inp.manifest
    rows = [("ecsim version", m.get("ecsim_version")), ("parameter set", inp.registry.digest()),
            ("seed", inp.scenario.population.seed), ("patients per arm", inp.scenario.population.n),
            ("python", m.get("python")), ("platform", m.get("platform")), ("timings (s)", m.get("timings_s"))]
    body = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in rows)
    return (f'<section id="provenance"><h2>Provenance</h2><table>{body}</table><p class="small">Rerun: '
            "<code>ecsim run SCENARIO --seed SEED</code> with the scenario recorded in manifest.json.</p></section>")


def page(inp, plots: dict, refs: list[dict]) -> str:
    ref_text = "; ".join(f"{r['label']} ({r['kind']}): {r['observed']:+g} at day {r['day']:g}" for r in refs)
    figs = [
        figure("drug-levels", plots["drug-levels"], "Drug levels",
               "Median and 5-95 % band of the sampled patients per arm; symmetric-log axis."),
        figure("target-engagement", plots["target-engagement"], "Target engagement",
               "Last-day average per patient: median and 5th-95th percentile; FAAH and MAGL use lower-bound IC50s "
               "(upper-bound inhibition)."),
        figure("tone", plots["tone"], "Endocannabinoid tone and CB1 signalling",
               "Population mean per arm; 1 = drug-free."),
        figure("circuit", plots["circuit"], "Basal-ganglia firing rates",
               "Mean steady-state rate at each visit (Starr 2005 anchors: normal GPi ≈82 Hz, dystonia ≈55 Hz)."),
        figure("symptoms", plots["symptoms"], "Symptoms and body regions over time",
               "Top: share of patients with each of the article's symptoms; bottom: mean severity per region."),
        figure("scales", plots["scales"], "Scale change per arm against published results",
               "Mean change from baseline with 95 % CI of the mean; diamonds: " + (ref_text or "no published reference "
                                                                                  "for this scale and form")),
    ]
    title = f"ecsim report: {inp.scenario.name}"
    nav = "".join(f'<a href="#{s}">{s.replace("-", " ")}</a>' for s in ("answer", "patients", "trial", "adverse", "claims",
                                                                         "validation", "parameters", "citations"))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width, initial-scale=1'><title>{e(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{e(title)}</h1><p class='sub'>{e(inp.scenario.description or '')}</p><nav>{nav}</nav>"
            + answer(inp) + patients(inp) + trial_table(inp) + adverse_table(inp)
            + "<h2>Plots</h2>" + "".join(figs) + uncertainty_section(inp, plots.get("uncertainty"))
            + claims_table(inp.claims) + validation_table(inp.validation) + parameters_table(inp.registry)
            + citations(inp) + provenance(inp)
            + "<p class='small'>ecsim is a model, not medical advice.</p></body></html>")
