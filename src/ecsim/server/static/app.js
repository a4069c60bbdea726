// The ecsim page: fill the form from /api/options and /api/phenotypes, POST /api/runs, poll the
// run, then show the answer, the figures and the report. No framework, no build step; text from
// the server is always set as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SCALES = {
  twstrs_total: { name: "TWSTRS total", range: "0 to 85" },
  bfmdrs_movement: { name: "BFMDRS movement score", range: "0 to 120" },
  jrs: { name: "Jankovic rating scale", range: "0 to 8" },
};
const POLL_MS = 500;
let phenotypes = {};

function option(select, value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  select.append(o);
}

function num(x, digits = 1) {
  return (x < 0 ? "\u2212" : "") + Math.abs(x).toFixed(digits);
}

function ci(pair) {
  return pair ? `${num(pair[0])} to ${num(pair[1])}` : "n/a";
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.detail || `HTTP ${r.status}`);
  return body;
}

async function loadChoices() {
  const [opts, phs] = await Promise.all([getJSON("/api/options"), getJSON("/api/phenotypes")]);
  for (const p of phs) {
    phenotypes[p.name] = p;
    option($("phenotype"), p.name, p.label);
  }
  opts.products.forEach((c) => option($("product"), c.value, c.label));
  opts.routes.forEach((c) => option($("route"), c.value, c.label));
  opts.foods.forEach((c) => option($("food"), c.value, c.label));
  const d = opts.defaults;
  for (const [key, value] of Object.entries(d)) {
    const el = $(key);
    if (!el) continue;
    if (el.type === "checkbox") el.checked = Boolean(value);
    else el.value = String(value);
  }
  $("patients").min = opts.min_patients;
  $("patients").max = opts.max_patients;
  $("patients-hint").textContent = `${opts.min_patients} to ${opts.max_patients} on this server; ` +
    "more patients give narrower intervals and take longer.";
  $("weeks").max = opts.max_weeks;
  syncForm();
}

function syncForm() {
  const p = phenotypes[$("phenotype").value];
  if (p) {
    const scale = SCALES[p.primary_scale] || { name: p.primary_scale };
    $("phenotype-hint").textContent = `Cause: ${p.cause}. Primary outcome: ${scale.name}.`;
    $("botulinum_reference").disabled = !p.botulinum_reference;
    if (!p.botulinum_reference) $("botulinum_reference").checked = false;
    $("toxin-hint").textContent = p.botulinum_reference
      ? "The treatment known to work in cervical dystonia, simulated the same way."
      : "Offered for cervical dystonia only: the toxin model is calibrated on neck injections.";
  }
  $("food").disabled = !["oral", "oromucosal"].includes($("route").value);   // a meal changes both (scenario.MEAL_ROUTES)
  $("clobazam-box").hidden = $("comedication").value !== "clobazam";
}

function formBody() {
  const body = {};
  for (const el of $("trial").elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") body[el.name] = el.checked;
    else if (el.type === "number" || el.name === "doses_per_day") body[el.name] = el.value === "" ? null : Number(el.value);
    else body[el.name] = el.value;
  }
  return body;
}

function showFormError(detail, field) {
  $("form-error").textContent = detail;
  $("form-error").hidden = false;
  const el = field && $(field);
  if (el) {
    el.setAttribute("aria-invalid", "true");
    el.focus();
  }
}

function clearErrors() {
  $("form-error").hidden = true;
  $("run-error").hidden = true;
  for (const el of $("trial").elements) el.removeAttribute("aria-invalid");
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  $("submit").disabled = true;
  try {
    const r = await fetch("/api/runs", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(formBody()),
    });
    const body = await r.json();
    if (r.status !== 202) {
      showFormError(body.detail || `HTTP ${r.status}`, body.field);
      $("submit").disabled = false;
      return;
    }
    startProgress();
    poll(body.id);
  } catch (err) {
    showFormError(`The server could not be reached (${err.message}).`);
    $("submit").disabled = false;
  }
}

function startProgress() {
  $("idle").hidden = true;
  $("result").hidden = true;
  $("progress-box").hidden = false;
  $("progress").value = 0;
  $("progress-text").textContent = "Queued…";
}

async function poll(id) {
  let run;
  try {
    run = await getJSON(`/api/runs/${id}`);
  } catch (err) {
    return failed(err.message);
  }
  $("progress").value = run.progress;
  $("progress-text").textContent = progressText(run);
  if (run.status === "done") return done(run);
  if (run.status === "failed") return failed(run.error);
  setTimeout(() => poll(id), POLL_MS);
}

function progressText(run) {
  if (run.status === "queued") return "Queued: starting a worker…";
  if (run.progress >= 1) return "Patients simulated. Checking the article's claims and writing the report…";
  return `Simulating virtual patients: ${Math.round(100 * run.progress)} %`;
}

function failed(message) {
  $("progress-box").hidden = true;
  $("run-error").textContent = `The run failed: ${message}`;
  $("run-error").hidden = false;
  $("submit").disabled = false;
}

function done(run) {
  $("progress-box").hidden = true;
  $("submit").disabled = false;
  showAnswer(run.summary.trial);
  $("meta").textContent = `${run.summary.arms[0].patients} virtual patients per arm · ` +
    `responder: ${run.summary.trial.responder_definition}`;
  showPlots(run);
  $("report").src = run.report_url;
  $("report-link").href = run.report_url;
  $("summary-link").href = `/api/runs/${run.id}/files/summary.json`;
  $("result").hidden = false;
}

function showAnswer(trial) {
  const scale = SCALES[trial.primary_scale] || { name: trial.primary_scale, range: "" };
  const names = Object.keys(trial.arms);
  const product = names.find((n) => n !== trial.control_arm && !n.startsWith("botulinum"));
  const arm = trial.arms[product];
  const placebo = trial.arms[trial.control_arm];
  const diff = arm.difference_vs_control;
  const weeks = Math.round(trial.primary_day / 7);
  $("answer").textContent = `After ${weeks} week${weeks === 1 ? "" : "s"}, the ${scale.name} changed by ` +
    `${num(arm.change.mean)} points with CBD (95 % CI ${ci(arm.change.ci95)}) and by ` +
    `${num(placebo.change.mean)} with placebo. Difference from placebo: ${num(diff.mean)} points ` +
    `(95 % CI ${ci(diff.ci95)}).`;
  const v = verdict(diff.ci95, trial.arms.botulinum_dysport_500u);
  $("verdict").textContent = v.text;
  $("verdict").className = `verdict ${v.kind}`;
  $("arms-caption").textContent = `${scale.name} at week ${weeks}: change from baseline per arm (mean, 95 % CI)`;
  $("scale-hint").textContent = `${scale.name} runs ${scale.range}; higher is worse, so a negative change is ` +
    "an improvement. Every arm, placebo included, carries the expectation (placebo) response.";
  fillTable(trial, names);
}

// What the difference's interval says (lower is better on every scale), with the toxin arm for scale.
function verdict(interval, toxin) {
  const d = toxin && toxin.difference_vs_control;
  const ref = d ? ` For comparison, botulinum toxin differs from placebo by ${num(d.mean)} points ` +
    `(95 % CI ${ci(d.ci95)}).` : "";
  if (!interval) return { kind: "none", text: "Too few patients for an interval." + ref };
  if (interval[1] < 0) return { kind: "good", text: "In this model the CBD arm improves more than placebo." + ref };
  if (interval[0] > 0) return { kind: "bad", text: "In this model the CBD arm does worse than placebo." + ref };
  return { kind: "none",
    text: "The interval includes zero: in this model the CBD arm is not distinguishable from placebo." + ref };
}

function fillTable(trial, names) {
  const body = $("arms").querySelector("tbody");
  body.replaceChildren();
  for (const name of names) {
    const a = trial.arms[name];
    const cells = [
      name.replaceAll("_", " "),
      `${num(a.change.mean)} (${ci(a.change.ci95)})`,
      a.difference_vs_control ? `${num(a.difference_vs_control.mean)} (${ci(a.difference_vs_control.ci95)})` : "reference",
      a.responders == null ? "n/a" : `${Math.round(100 * a.responders)} %`,
    ];
    const tr = document.createElement("tr");
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
  }
}

function showPlots(run) {
  const box = $("plots");
  box.replaceChildren();
  for (const name of run.files.filter((f) => f.endsWith(".png"))) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = `/api/runs/${run.id}/files/${encodeURIComponent(name)}`;
    img.alt = `figure ${name}`;
    img.className = "plot";
    const cap = document.createElement("figcaption");
    cap.textContent = name;
    fig.append(img, cap);
    box.append(fig);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["phenotype", "route", "comedication"]) $(id).addEventListener("change", syncForm);
  $("trial").addEventListener("submit", submit);
  loadChoices().catch((err) => showFormError(`Could not load the form's choices (${err.message}).`));
});
