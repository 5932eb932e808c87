// edgerec web client: runs a phone bundle's model.tflite in this browser with LiteRT.js (WebAssembly, CPU).
//
// Every model call is by signature name, its inputs and outputs named as manifest.json lists them:
//   fold_in(history, history_mask) -> user_gmf, user_mlp          (when the bundle has it: the picks, on the device)
//   recommend(user_gmf, user_mlp)  -> top_items, top_scores, scores
//                                     (a shortlist bundle: top_items, top_scores, shortlist, shortlist_scores, and
//                                      score(user_gmf, user_mlp, items) -> scores, ... for items off its shortlist)
//   explain(user_gmf, user_mlp, history, history_mask, items) -> reasons, reason_weights   (when the bundle has it)
//   user_features(feature_indices, feature_weights) -> user_gmf, user_mlp      (a model with user features: the
//                                                      attributes typed in the form, encoded here by features.js)
//   fold_in_from(history, history_mask, user_gmf, user_mlp) -> user_gmf, user_mlp   (attributes and picks together)
// A bundle without fold_in uses the demo user (site.json) who scores the picks highest; one without explain gets
// its reasons from the similarity explainer computed here over item_vectors.bin, when the site has it.
// Nothing is fetched from anywhere but this site (the page's Content-Security-Policy allows only 'self').

import {Tensor, loadAndCompile, loadLiteRt} from '@litertjs/core';

import {FeatureEncoder, pyStrip} from './features.js';

const WASM_DIR = './vendor/litertjs/wasm/';
const SHOWN_IN_LIST = 200;

const S = {
  manifest: null,
  site: null,
  ids: [],          // original item ids (text) by dense index
  titles: null,     // titles by dense index, or null
  byId: new Map(),  // original id (text) -> dense index
  model: null,
  picked: [],       // dense indices, in the order picked
  unit: null,       // Float32Array [n_items * dims] of the similarity explainer, or null
  encoder: null,    // the user encoder (features.js) of a bundle with user_features, or null
  busy: false,
  runs: 0,          // recommend presses answered (results or a message)
};

// what tests and benchmarks read: ready once the model is loaded; the last run's raw results
const hook = {ready: false, error: null, last: null, loadMs: null, bench: null, chain: null};
window.edgerec = hook;

class InputError extends Error {}

const $ = (id) => document.getElementById(id);

function setStatus(text, state) {
  const s = $('status');
  s.textContent = text;
  s.dataset.state = state;
}

// kind 'error': the run was refused; 'note': results are shown, with something the visitor should know
function showMessage(text, kind = 'error') {
  const m = $('message');
  m.textContent = text || '';
  m.dataset.kind = kind;
  m.hidden = !text;
}

async function fetchOk(path) {
  const r = await fetch(path, {cache: 'no-store'});
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r;
}

const getJson = async (path) => (await fetchOk(path)).json();

function label(i) {
  const t = S.titles && S.titles[i];
  return t || `item ${S.ids[i]}`;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

// -- the model ------------------------------------------------------------------------------------------------------

const size = (shape) => shape.reduce((a, b) => a * b, 1);

function checkSignatures() {
  const have = S.model.signatures;
  for (const [name, sig] of Object.entries(S.manifest.signatures)) {
    const runner = have[name];
    if (!runner) throw new Error(`model.tflite has no signature ${name} (manifest.json lists it)`);
    for (const [kind, details] of [['inputs', runner.getInputDetails()], ['outputs', runner.getOutputDetails()]]) {
      const byName = new Map(details.map((d) => [d.name, d]));
      for (const [tensor, [dtype, shape]] of Object.entries(sig[kind])) {
        const d = byName.get(tensor);
        if (!d) throw new Error(`signature ${name} of model.tflite has no ${kind.slice(0, -1)} ${tensor}`);
        if (d.dtype !== dtype || Array.from(d.shape).join() !== shape.join()) {
          throw new Error(`${name}.${tensor}: model.tflite has ${d.dtype}[${Array.from(d.shape)}], ` +
                          `manifest.json says ${dtype}[${shape}]`);
        }
      }
    }
  }
}

// One call of signature `name`: `feeds` maps each input's name (as the manifest lists it) to its values. Returns
// the outputs by name (typed arrays copied out of the runtime) and the milliseconds from the input tensors' creation
// to the last output read. Every tensor is deleted before it returns.
async function call(name, feeds) {
  const sig = S.manifest.signatures[name];
  const inputs = {};
  let outputs = {};
  const t0 = performance.now();
  try {
    for (const [tensor, [dtype, shape]] of Object.entries(sig.inputs)) {
      const values = feeds[tensor];
      if (values === undefined) throw new Error(`${name}: the page has no value for input ${tensor}`);
      const arr = dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values);
      if (arr.length !== size(shape)) {
        throw new Error(`${name}.${tensor}: ${arr.length} values for shape [${shape}]`);
      }
      inputs[tensor] = new Tensor(arr, shape);
    }
    outputs = await S.model.run(name, inputs);
    const out = {};
    for (const tensor of Object.keys(sig.outputs)) {
      if (!(tensor in outputs)) throw new Error(`${name}: no output ${tensor}`);
      out[tensor] = outputs[tensor].toTypedArray();
    }
    return {out, ms: performance.now() - t0};
  } finally {
    for (const t of [...Object.values(inputs), ...Object.values(outputs)]) t.delete();
  }
}

// The name of a signature's output: `preferred` where the manifest has it, else the one output whose [dtype, shape]
// passes `test` (today's bundles name recommend's outputs output_0..2; never chosen by position).
function outputName(signature, preferred, test) {
  const outs = S.manifest.signatures[signature].outputs;
  if (preferred in outs) return preferred;
  const found = Object.entries(outs).filter(([, spec]) => test(spec[0], spec[1]));
  if (found.length !== 1) throw new Error(`${signature}: cannot tell which output is ${preferred}`);
  return found[0][0];
}

// The names of the two user vectors a signature outputs: {gmf, mlp}.
function vectorNames(signature) {
  const g = S.manifest.user_vector_dims.gmf;
  const d = S.manifest.user_vector_dims.mlp;
  return {
    gmf: outputName(signature, 'user_gmf', (t, s) => t === 'float32' && size(s) === g && g !== d),
    mlp: outputName(signature, 'user_mlp', (t, s) => t === 'float32' && size(s) === d && g !== d),
  };
}

function roles() {
  const m = S.manifest;
  const n = m.n_items;
  const r = {
    topItems: outputName('recommend', 'top_items', (t, s) => t === 'int32' && s.length === 1),
    topScores: outputName('recommend', 'top_scores', (t, s) => t === 'float32' && s.length === 1 && s[0] !== n),
  };
  if ('shortlist' in m.signatures.recommend.outputs) {  // recommend scores its shortlist, not the catalog
    r.shortlist = 'shortlist';
    r.shortlistScores = 'shortlist_scores';
  } else {
    r.scores = outputName('recommend', 'scores', (t, s) => t === 'float32' && size(s) === n && s.at(-1) === n);
  }
  if ('fold_in' in m.signatures) ({gmf: r.gmf, mlp: r.mlp} = vectorNames('fold_in'));
  if ('user_features' in m.signatures) r.features = vectorNames('user_features');
  if ('fold_in_from' in m.signatures) r.from = vectorNames('fold_in_from');
  if ('explain' in m.signatures) {
    r.reasons = outputName('explain', 'reasons', (t, s) => t === 'int32' && s.length === 2);
    r.weights = outputName('explain', 'reason_weights', (t, s) => t === 'float32' && s.length === 2);
  }
  return r;
}

// The history length H of fold_in / explain: the manifest's max_history, else the signature's history input.
function maxHistory() {
  if (S.manifest.max_history) return S.manifest.max_history;
  for (const name of ['fold_in', 'explain', 'fold_in_from']) {
    const spec = S.manifest.signatures[name]?.inputs?.history;
    if (spec) return size(spec[1]);
  }
  return null;
}

function padded(items, length) {
  const history = new Int32Array(length);
  const mask = new Float32Array(length);
  items.slice(0, length).forEach((item, n) => {
    history[n] = item;
    mask[n] = 1;
  });
  return {history, history_mask: mask};
}

// recommend's scores as one array over the catalog and the items it ranked: {scores, pool} (a shortlist bundle
// scores its shortlist only: the other items score -Infinity and are not in the pool; otherwise pool is null).
function ranked(out, r) {
  if (!r.shortlist) return {scores: out[r.scores], pool: null};
  const scores = new Float32Array(S.manifest.n_items).fill(-Infinity);
  const pool = Array.from(out[r.shortlist]);
  const values = out[r.shortlistScores];
  pool.forEach((item, j) => {
    scores[item] = values[j];
  });
  return {scores, pool};
}

// The best k items by score (of `pool`, default every item), the history left out; ties go to the lower index (as
// numpy's stable argsort).
function topK(scores, k, exclude, pool = null) {
  const idx = [];
  for (const i of pool ?? scores.keys()) if (!exclude.has(i)) idx.push(i);
  idx.sort((a, b) => scores[b] - scores[a] || a - b);
  return idx.slice(0, k);
}

// -- picking ----------------------------------------------------------------------------------------------------------

function typedIds() {
  const words = $('ids').value.split(/[\s,;]+/).filter(Boolean);
  const unknown = words.filter((w) => !S.byId.has(w));
  if (unknown.length) {
    const list = unknown.slice(0, 5).join(', ') + (unknown.length > 5 ? ', …' : '');
    throw new InputError(`Unknown item id${unknown.length > 1 ? 's' : ''}: ${list}. ` +
                         `This catalog has ${S.ids.length} items; pick from the list or check the ids.`);
  }
  return words.map((w) => S.byId.get(w));
}

// The picked and typed items (none is allowed: an attributes-only user).
function pickedItems() {
  const picks = [...new Set([...S.picked, ...typedIds()])];
  const h = maxHistory();
  const sigs = S.manifest.signatures;
  if (('fold_in' in sigs || 'fold_in_from' in sigs) && h !== null && picks.length > h) {
    throw new InputError(`Pick at most ${h} items (this model folds in up to ${h}); you picked ${picks.length}.`);
  }
  if (picks.length && S.ids.length - picks.length < 1) {
    throw new InputError('Leave at least one item unpicked to recommend.');
  }
  return picks;
}

function currentPicks() {
  const picks = pickedItems();
  if (!picks.length) {
    throw new InputError('Pick at least one item you liked (click it in the list, or type its id) first.');
  }
  return picks;
}

// -- attributes (a bundle with user_features) -------------------------------------------------------------------------

// Whether the page has a use for picked items: folding them in, or choosing a demo user by them.
const canPick = () => 'fold_in' in S.manifest.signatures || S.site.demo_users.length > 0;

const KIND_HINTS = {
  categorical: 'one of',
  multi: `one or more of`,
  numeric: 'a number',
  scaled: 'a number',
  text: 'a few words',
};

function listed(values, most = 8) {
  return values.slice(0, most).join(', ') + (values.length > most ? ', …' : '');
}

function renderAttributeForm() {
  const box = $('attr-fields');
  box.replaceChildren();
  S.encoder.columns.forEach((c, n) => {
    const id = `attr-${n}`;
    const row = document.createElement('div');
    row.className = 'attr';
    const lab = document.createElement('label');
    lab.htmlFor = id;
    lab.append(c.name, ' ');
    const hint = document.createElement('small');
    const choices = c.kind === 'categorical' || c.kind === 'multi';
    hint.textContent = choices ? `${KIND_HINTS[c.kind]} ${listed(c.vocab)}` +
      (c.kind === 'multi' ? `, separated by ${c.separator}` : '') : KIND_HINTS[c.kind];
    lab.append(hint);
    const input = document.createElement('input');
    input.id = id;
    input.type = 'text';  // not type=number: a malformed number must reach the page to be told about
    input.autocomplete = 'off';
    input.dataset.column = c.name;
    if (c.kind === 'numeric' || c.kind === 'scaled') input.inputMode = 'decimal';
    if (choices && c.vocab.length) {
      input.placeholder = `e.g. ${c.vocab[0]}`;
      const list = document.createElement('datalist');
      list.id = `${id}-values`;
      for (const v of c.vocab) {
        const o = document.createElement('option');
        o.value = v;
        list.append(o);
      }
      input.setAttribute('list', list.id);
      row.append(list);
    }
    input.addEventListener('keydown', (e) => { if (e.key === 'Enter') $('recommend').click(); });
    row.prepend(lab, input);
    box.append(row);
  });
}

// The form's values: {values: {column: text}, given: how many fields are not blank}.
function typedAttributes() {
  const values = {};
  let given = 0;
  for (const input of $('attr-fields').querySelectorAll('input[data-column]')) {
    values[input.dataset.column] = input.value;
    if (pyStrip(input.value)) given++;  // blank as the encoder strips it: missing
  }
  return {values, given};
}

function quoted(text) {
  const t = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return `"${t.replace(/\s+/g, ' ')}"`;
}

// The form encoded, or an InputError for a value the page will not run (a malformed number: Python's encoder would
// count it invalid and use the column's reserved index, which would silently ignore a typo).
function encodedAttributes(values) {
  const enc = S.encoder.encode(values);
  if (enc.invalid.length) {
    const {column, value, why} = enc.invalid[0];
    throw new InputError(`${column}: ${quoted(value)} is not a number (${why || 'type one like 25 or 25.5'}); ` +
                         'fix it or leave the field empty.');
  }
  return enc;
}

// What the run will use: the picks, and the encoded attributes when the form has any.
function plan() {
  const typed = S.encoder ? typedAttributes() : {given: 0};
  if (!typed.given) {
    if (S.encoder && !canPick()) {
      throw new InputError('Describe yourself in at least one field first: this model recommends from attributes.');
    }
    return {picks: currentPicks(), attributes: null, given: 0};
  }
  const picks = canPick() ? pickedItems() : [];
  if (picks.length && !('fold_in_from' in S.manifest.signatures)) {
    throw new InputError('This model cannot fold your picks in from your attributes (its bundle has no ' +
                         'fold_in_from); clear the picks or the attributes.');
  }
  return {picks, attributes: encodedAttributes(typed.values), given: typed.given};
}

function unknownNote(enc) {
  if (!enc.unknown.length) return '';
  const parts = enc.unknown.slice(0, 3).map(({column, value}) => `${column} ${quoted(value)}`);
  const more = enc.unknown.length > 3 ? ` and ${enc.unknown.length - 3} more` : '';
  return `Not among the values this model was trained on, so counted as unknown: ${parts.join(', ')}${more}.`;
}

// user_features' inputs for encoded attributes (FeatureEncoder.encode's result).
const featureFeed = (enc) => ({feature_indices: enc.indices, feature_weights: enc.weights});

// user_features on the encoded attributes, then fold_in_from on the picks when there are any.
async function attributeVectors(p, timings) {
  const r = roles();
  const enc = p.attributes;
  const f = await call('user_features', featureFeed(enc));
  timings.push(['user_features', f.ms]);
  let vectors = {user_gmf: f.out[r.features.gmf], user_mlp: f.out[r.features.mlp]};
  const odd = [];
  if (enc.unknown.length) odd.push(`${enc.unknown.length} unknown value${enc.unknown.length > 1 ? 's' : ''}`);
  if (enc.missing.length) odd.push(`not given: ${enc.missing.join(', ')}`);
  const attrs = `your ${p.given} attribute${p.given > 1 ? 's' : ''}${odd.length ? ` (${odd.join('; ')})` : ''}`;
  if (!p.picks.length) {
    return {vectors, who: `A new user known by ${attrs} alone, turned into vectors on this device (user_features).`};
  }
  const g = await call('fold_in_from', {...padded(p.picks, maxHistory()), ...vectors});
  timings.push(['fold_in_from', g.ms]);
  vectors = {user_gmf: g.out[r.from.gmf], user_mlp: g.out[r.from.mlp]};
  const n = p.picks.length;
  const who = `A new user folded in on this device from your ${n} item${n > 1 ? 's' : ''}, starting from what ` +
    `${attrs} say (user_features, then fold_in_from).`;
  return {vectors, who};
}

function renderCatalog() {
  const q = $('search').value.trim().toLowerCase();
  const list = $('catalog');
  list.replaceChildren();
  const chosen = new Set(S.picked);
  let matched = 0;
  for (let i = 0; i < S.ids.length; i++) {
    if (q && !label(i).toLowerCase().includes(q) && !S.ids[i].toLowerCase().includes(q)) continue;
    matched++;
    if (matched > SHOWN_IN_LIST) continue;
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'item';
    b.dataset.index = i;
    b.dataset.item = S.ids[i];
    b.setAttribute('aria-pressed', String(chosen.has(i)));
    b.append(label(i), ' ');
    const small = document.createElement('small');
    small.textContent = `id ${S.ids[i]}`;
    b.append(small);
    b.addEventListener('click', () => togglePick(i));
    li.append(b);
    list.append(li);
  }
  $('catalog-note').textContent = matched > SHOWN_IN_LIST ?
    `showing ${SHOWN_IN_LIST} of ${matched} items; search to find others` :
    (matched ? '' : 'no item matches');
}

function togglePick(i) {
  const at = S.picked.indexOf(i);
  if (at >= 0) S.picked.splice(at, 1);
  else S.picked.push(i);
  showMessage('');
  renderPicked();
  renderCatalog();
}

function renderPicked() {
  const list = $('picked');
  list.replaceChildren();
  for (const i of S.picked) {
    const li = document.createElement('li');
    li.dataset.index = i;
    li.dataset.item = S.ids[i];
    li.append(label(i), ' ');
    const x = document.createElement('button');
    x.type = 'button';
    x.className = 'remove';
    x.textContent = '×';
    x.setAttribute('aria-label', `remove ${label(i)}`);
    x.addEventListener('click', () => togglePick(i));
    li.append(x);
    list.append(li);
  }
}

// -- recommending -------------------------------------------------------------------------------------------------

// A demo user's scores of the picked items, in their order: {s, took (ms)}, from recommend's catalog scores, or for
// a shortlist bundle (whose recommend scores its shortlist only) from the score signature, C items a call.
async function pickScores(u, picks, r) {
  const user = {user_gmf: u.user_gmf, user_mlp: u.user_mlp};
  if (!r.shortlist) {
    const res = await call('recommend', user);
    return {s: picks.map((i) => res.out[r.scores][i]), took: res.ms};
  }
  const c = S.manifest.candidates;
  const s = [];
  let took = 0;
  for (let at = 0; at < picks.length; at += c) {
    const items = new Int32Array(c).fill(-1);
    items.set(picks.slice(at, at + c));
    const res = await call('score', {...user, items});
    took += res.ms;
    s.push(...res.out.scores.slice(0, Math.min(c, picks.length - at)));
  }
  return {s, took};
}

async function userVectors(picks, r, timings) {
  if ('fold_in' in S.manifest.signatures) {
    const res = await call('fold_in', padded(picks, maxHistory()));
    timings.push(['fold_in', res.ms]);
    const who = `A new user folded in on this device from your ${picks.length} item${picks.length > 1 ? 's' : ''}.`;
    return {vectors: {user_gmf: res.out[r.gmf], user_mlp: res.out[r.mlp]}, who, demo: null};
  }
  let best = null;
  let ms = 0;
  for (const u of S.site.demo_users) {
    const {s, took} = await pickScores(u, picks, r);
    ms += took;
    let sum = 0;
    for (let j = 0; j < picks.length; j++) sum += s[j];
    const mean = sum / picks.length;
    if (best === null || mean > best.mean) best = {u, mean};
  }
  const n = S.site.demo_users.length;
  timings.push([`pick a demo user (${n} × recommend)`, ms]);
  const who = `Demo mode: this bundle has no fold_in signature, so the page uses demo user ${best.u.id}, the one ` +
    `of ${n} known users who scores your picks highest (mean logit ${best.mean.toFixed(3)}).`;
  const vectors = {user_gmf: Float32Array.from(best.u.user_gmf), user_mlp: Float32Array.from(best.u.user_mlp)};
  return {vectors, who, demo: best.u.id};
}

async function explainSignature(vectors, picks, top, r, timings) {
  const spec = S.manifest.signatures.explain;
  const length = size(spec.inputs.items[1]);
  const items = new Int32Array(length);
  top.slice(0, length).forEach((item, n) => { items[n] = item; });
  const hist = padded(picks, maxHistory());
  const res = await call('explain', {...vectors, ...hist, items});
  timings.push(['explain', res.ms]);
  const R = spec.outputs[r.reasons][1][1];
  const byPosition = /position/i.test(spec.outputs[r.reasons][2] || '');  // a reason is an index into history
  return top.map((_, row) => {
    const out = [];
    if (row >= length) return out;
    for (let j = 0; j < R; j++) {
      const v = res.out[r.reasons][row * R + j];
      const w = res.out[r.weights][row * R + j];
      const item = byPosition ? (v >= 0 && v < picks.length ? hist.history[v] : -1) : v;
      if (item >= 0 && item < S.ids.length && Number.isFinite(w) && w > 0) out.push({item, weight: w});
    }
    return out;
  });
}

// edgerec's similarity explainer: each picked item's cosine to the recommended item, the strongest `top` first.
// Here and for the explain signature, only positive weights are shown: "because you liked X" for an item that
// points away from the recommendation would be false.
function similarityReasons(picks, top) {
  const {dims, top: count} = S.site.reasons;
  const history = [...picks].sort((a, b) => a - b);
  return top.map((item) => {
    const w = history.map((h) => {
      let dot = 0;
      for (let j = 0; j < dims; j++) dot += S.unit[item * dims + j] * S.unit[h * dims + j];
      return dot;
    });
    const order = history.map((_, n) => n).sort((a, b) => w[b] - w[a] || a - b);
    return order.slice(0, count).filter((n) => w[n] > 0).map((n) => ({item: history[n], weight: w[n]}));
  });
}

async function recommend() {
  if (S.busy) return;
  showMessage('');
  let p;
  try {
    p = plan();
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    showMessage(e.message);
    $('results').replaceChildren();
    $('who').textContent = '';
    $('timings').hidden = true;
    hook.last = {error: e.message};
    document.body.dataset.runs = String(++S.runs);
    return;
  }
  S.busy = true;
  $('recommend').disabled = true;
  try {
    const r = roles();
    const timings = [];
    const picks = p.picks;
    const {vectors, who, demo = null} = p.attributes ? await attributeVectors(p, timings) :
      await userVectors(picks, r, timings);
    const rec = await call('recommend', vectors);
    timings.push(['recommend', rec.ms]);
    const {scores, pool} = ranked(rec.out, r);
    const top = topK(scores, S.manifest.k, new Set(picks), pool);
    let reasons = null;
    let method = S.site.reasons.method;
    if (!picks.length) {
      method = 'attributes';  // reasons are picked items: there are none
    } else if (method === 'explain') {
      reasons = await explainSignature(vectors, picks, top, r, timings);
    } else if (method === 'similarity' && S.unit) {
      const t0 = performance.now();
      reasons = similarityReasons(picks, top);
      timings.push(['reasons (similarity, in the page)', performance.now() - t0]);
    } else {
      method = 'none';
    }
    render(top, scores, reasons, method, who, timings);
    if (p.attributes) showMessage(unknownNote(p.attributes), 'note');
    hook.last = {
      picks,
      who,
      demo_user: demo,
      attributes: p.attributes && {
        feature_indices: Array.from(p.attributes.indices),
        feature_weights: Array.from(p.attributes.weights),
        missing: p.attributes.missing,
        unknown: p.attributes.unknown,
      },
      vectors: {user_gmf: Array.from(vectors.user_gmf), user_mlp: Array.from(vectors.user_mlp)},
      graph_top_items: Array.from(rec.out[r.topItems]),
      graph_top_scores: Array.from(rec.out[r.topScores]),
      shown: top.map((i) => ({index: i, id: S.ids[i], score: scores[i]})),
      reasons: reasons && reasons.map((row) => row.map((x) => ({index: x.item, id: S.ids[x.item], weight: x.weight}))),
      method,
      timings,
    };
  } catch (e) {
    console.warn('recommend failed:', e);
    showMessage(`The model could not run on these items: ${e.message}`);
    hook.last = {error: String(e.message || e)};
  } finally {
    S.busy = false;
    $('recommend').disabled = false;
    document.body.dataset.runs = String(++S.runs);  // what a test waits for
  }
}

function render(top, scores, reasons, method, who, timings) {
  $('who').textContent = who;
  const list = $('results');
  list.replaceChildren();
  top.forEach((i, n) => {
    const li = document.createElement('li');
    li.className = 'rec';
    li.dataset.index = i;
    li.dataset.item = S.ids[i];
    li.dataset.score = String(scores[i]);
    const title = document.createElement('span');
    title.className = 'title';
    title.textContent = label(i);
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = `id ${S.ids[i]} · logit ${scores[i].toFixed(3)}`;
    li.append(title, ' ', meta);
    const because = document.createElement('div');
    because.className = 'because';
    if (reasons && reasons[n].length) {
      because.append('because you liked ');
      reasons[n].forEach((x, j) => {
        if (j) because.append(j === reasons[n].length - 1 ? ' and ' : ', ');
        const s = document.createElement('span');
        s.className = 'reason';
        s.dataset.index = x.item;
        s.dataset.item = S.ids[x.item];
        s.dataset.weight = String(x.weight);
        s.title = `${method === 'explain' ? 'weight' : 'cosine similarity'} ${x.weight.toFixed(3)}`;
        s.textContent = label(x.item);
        const w = document.createElement('small');
        w.textContent = ` (${x.weight.toFixed(2)})`;
        because.append(s, w);
      });
    } else if (method === 'attributes') {
      because.textContent = '(ranked from your attributes; reasons come from picked items)';
    } else {
      because.textContent = method === 'none' ? '(this bundle has no explanations)' :
        'none of your picks is close to this one';
    }
    li.append(because);
    list.append(li);
  });
  const body = $('timings').querySelector('tbody');
  body.replaceChildren();
  for (const [what, ms] of timings) {
    const tr = document.createElement('tr');
    tr.dataset.call = what;
    tr.dataset.ms = String(ms);
    const a = document.createElement('td');
    a.textContent = what;
    const b = document.createElement('td');
    b.textContent = ms.toFixed(2);
    tr.append(a, b);
    body.append(tr);
  }
  $('timings').hidden = false;
}

// -- start ----------------------------------------------------------------------------------------------------------

// The chain fold_in -> recommend -> explain for each history (dense item indices), every later input an earlier
// output (explain's items: recommend's in-graph top_items), as the other clients run it: what they are compared on.
async function chain(histories) {
  const r = roles();
  const results = [];
  for (const items of histories) {
    const hist = padded(items, maxHistory());
    const f = await call('fold_in', hist);
    const vectors = {user_gmf: f.out[r.gmf], user_mlp: f.out[r.mlp]};
    const rec = await call('recommend', vectors);
    const e = await call('explain', {...vectors, ...hist, items: rec.out[r.topItems]});
    results.push({
      user_gmf: Array.from(f.out[r.gmf]),
      user_mlp: Array.from(f.out[r.mlp]),
      top_items: Array.from(rec.out[r.topItems]),
      top_scores: Array.from(rec.out[r.topScores]),
      reasons: Array.from(e.out[r.reasons]),
      reason_weights: Array.from(e.out[r.weights]),
    });
  }
  return results;
}

// Each signature the page uses timed as edgerec's harness times a call (BenchConfig's loop: `warmup` calls and at
// least `warmupMs`, then at least `minCalls` calls and `minMs`, at most `maxCalls`), one signature after the other:
// {signature: each call's milliseconds as call() measures them}. The user is folded in from `history` (dense
// indices) where the bundle has fold_in, else the first demo user (or a zero user).
async function bench({warmup = 50, warmupMs = 200, minCalls = 50, minMs = 1000, maxCalls = 100000,
                      history = [0, 1, 2]} = {}) {
  const dims = S.manifest.user_vector_dims;
  const sigs = S.manifest.signatures;
  const r = roles();
  const hist = padded(history, maxHistory() || history.length);
  const u = S.site.demo_users[0];
  let vectors = u ? {user_gmf: u.user_gmf, user_mlp: u.user_mlp} :
    {user_gmf: new Float32Array(dims.gmf), user_mlp: new Float32Array(dims.mlp)};
  const feeds = {};
  if ('fold_in' in sigs) {
    feeds.fold_in = hist;
    const f = await call('fold_in', hist);
    vectors = {user_gmf: f.out[r.gmf], user_mlp: f.out[r.mlp]};
  }
  feeds.recommend = vectors;
  if (S.encoder) {  // a cold user: attributes (all missing here: the same work as any others) -> user_features
    feeds.user_features = featureFeed(S.encoder.encode({}));
    if ('fold_in_from' in sigs) {
      const f = await call('user_features', feeds.user_features);
      feeds.fold_in_from = {...hist, user_gmf: f.out[r.features.gmf], user_mlp: f.out[r.features.mlp]};
    }
  }
  if ('explain' in sigs) {
    const top = (await call('recommend', vectors)).out[r.topItems];
    feeds.explain = {...vectors, ...hist, items: top};
  }
  const ms = {};
  for (const [name, feed] of Object.entries(feeds)) {
    const warmUntil = performance.now() + warmupMs;
    for (let i = 0; i < warmup || performance.now() < warmUntil; i++) await call(name, feed);
    const times = [];
    const until = performance.now() + minMs;
    while (times.length < maxCalls && (times.length < minCalls || performance.now() < until)) {
      times.push((await call(name, feed)).ms);
    }
    ms[name] = times;
  }
  return ms;
}

async function start() {
  const t0 = performance.now();
  [S.manifest, S.site] = await Promise.all([getJson('manifest.json'), getJson('site.json')]);
  S.ids = (await getJson('id_maps.json')).items.map(String);
  S.titles = S.site.titles;
  S.ids.forEach((id, i) => S.byId.set(id, i));
  if (S.site.reasons.method === 'similarity') {
    const buf = await (await fetchOk(S.site.reasons.file)).arrayBuffer();
    S.unit = new Float32Array(buf);
    if (S.unit.length !== S.ids.length * S.site.reasons.dims) throw new Error(`${S.site.reasons.file}: wrong size`);
  }
  const bytes = new Uint8Array(await (await fetchOk(S.manifest.model_file)).arrayBuffer());
  const features = S.manifest.user_features;
  const encoderBytes = features ? new Uint8Array(await (await fetchOk(features.encoder)).arrayBuffer()) : null;
  let checked = 'sha256 checked';
  if (globalThis.crypto && crypto.subtle) {
    const checks = [[S.manifest.model_file, bytes, S.manifest.model_sha256]];
    if (features) checks.push([features.encoder, encoderBytes, features.sha256]);
    for (const [name, data, expected] of checks) {
      const digest = hex(await crypto.subtle.digest('SHA-256', data));
      if (digest !== expected) {
        throw new Error(`${name}: sha256 ${digest.slice(0, 12)}… does not match manifest.json; rebuild the site`);
      }
    }
  } else {
    checked = 'sha256 not checked: this origin has no WebCrypto (serve it from 127.0.0.1 or https)';
  }
  if (features) {
    const width = size(S.manifest.signatures.user_features.inputs.feature_indices[1]);
    try {
      S.encoder = new FeatureEncoder(JSON.parse(new TextDecoder().decode(encoderBytes)), width);
    } catch (e) {
      throw new Error(`${features.encoder}: ${e.message}`);
    }
  }
  const t1 = performance.now();
  // LiteRT's native log lines reach Emscripten's printErr (console.error by default): by their level instead, so the
  // console's errors are real ones. LiteRT.js's loader hands window.Module to the WASM module as its settings.
  window.Module = {
    print: (line) => console.info(line),
    printErr: (line) => (/^(INFO|VERBOSE|DEBUG)\b/.test(line) ? console.info :
                         /^WARNING\b/.test(line) ? console.warn : console.error)(line),
  };
  await loadLiteRt(WASM_DIR);
  const t2 = performance.now();
  S.model = await loadAndCompile(bytes, {accelerator: 'wasm'});
  checkSignatures();
  roles();  // every output the page reads can be told apart
  const dims = S.manifest.user_vector_dims;  // the first run allocates: done here, so the timings shown are steady
  await call('recommend', {user_gmf: new Float32Array(dims.gmf), user_mlp: new Float32Array(dims.mlp)});
  if (S.encoder) {
    await call('user_features', featureFeed(S.encoder.encode({})));
  }
  const t3 = performance.now();
  hook.loadMs = {files: t1 - t0, litert: t2 - t1, model: t3 - t2};
  hook.bench = bench;
  if ('fold_in' in S.manifest.signatures && 'explain' in S.manifest.signatures) hook.chain = chain;
  const m = S.manifest;
  setStatus(`Ready: ${m.n_items} items, model loaded in ${(t3 - t0).toFixed(0)} ms (LiteRT.js runtime ` +
            `${(t2 - t1).toFixed(0)} ms, model compiled and run once ${(t3 - t2).toFixed(0)} ms).`, 'ready');
  const from = [];
  if (canPick()) from.push('fold_in' in m.signatures ? 'fold_in on this device' : 'demo users');
  if (S.encoder) from.push(`attributes (user_features${'fold_in_from' in m.signatures ? ', fold_in_from' : ''})`);
  $('about').textContent = `LiteRT.js ${S.site.litertjs} (WebAssembly) · ${m.precision} bundle, version ` +
    `${m.version ?? '?'} · signatures: ${Object.keys(m.signatures).join(', ')} · users from ` +
    `${from.join(' and ')} · reasons: ${S.site.reasons.method} · model ${checked}`;
  if (S.encoder) {
    renderAttributeForm();
    $('attrs').hidden = false;
    $('pick-h').textContent = '2. …and / or pick a few items you liked';
    $('res-h').textContent = `${canPick() ? 3 : 2}. Recommended for you`;
  }
  $('pick-items').hidden = !canPick();
  for (const id of ['search', 'ids', 'recommend', 'clear']) $(id).disabled = false;
  $('search').addEventListener('input', renderCatalog);
  const run = () => recommend().catch((e) => showMessage(`Something went wrong: ${e.message || e}`));
  $('recommend').addEventListener('click', run);
  $('ids').addEventListener('keydown', (e) => { if (e.key === 'Enter') run(); });
  $('clear').addEventListener('click', () => {
    S.picked = [];
    $('ids').value = '';
    for (const input of $('attr-fields').querySelectorAll('input')) input.value = '';
    showMessage('');
    renderPicked();
    renderCatalog();
  });
  renderCatalog();
  hook.ready = true;
}

start().catch((e) => {
  console.warn('the page could not start:', e);
  hook.error = String(e.message || e);
  setStatus(`The model could not be loaded: ${hook.error}`, 'error');
});
