// edgerec's feature encoder in the page: a new user's raw attributes as the bundle's user_features signature takes
// them, exactly as edgerec.data.features.Encoder.encode_attributes encodes them in Python (the same indices, the
// same float32 weights, in the same order), from the bundle's user_encoder.json.
//
// Every column owns a range of one value space: its reserved index (`offset`: missing, unknown, invalid) and then
// its values. A category is its index with weight 1; a multi-valued field the mean of its values; a number its
// quantile bucket (numeric) or its index weighted by the clipped z-score (scaled); text the mean of its word grams
// hashed with crc32. Cells are text as typed: Python's str.strip() whitespace removed, an empty one is missing.

export const FORMAT = 'edgerec.features';
export const FORMAT_VERSION = 1;
const Z_CLIP = 5.0;
const KINDS = new Set(['categorical', 'multi', 'numeric', 'scaled', 'text']);

// Python's str.isspace() characters, which str.strip() removes (String.prototype.trim differs on a few)
const SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const STRIP = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, 'gu');
// Python's float() of a string: digits with single underscores between them, a point, an exponent; inf / nan
const DECIMAL = /^[+-]?(?:(?:\d(?:_?\d)*)?\.\d(?:_?\d)*|\d(?:_?\d)*\.?)(?:[eE][+-]?\d(?:_?\d)*)?$/;
const SPECIAL = /^[+-]?(?:inf|infinity|nan)$/i;
// Python's \w on text (str.isalnum() or "_"): letters and numbers of every script
const WORD = /[\p{L}\p{N}_]+/gu;
const OTHER_DIGIT = /(?![0-9])\p{Nd}/u;

export function pyStrip(text) {
  return text.replace(STRIP, '');
}

// Python's float(text) when it is finite, else null (edgerec's _number); throws for digits outside 0-9, which
// Python reads but this page does not.
export function pyNumber(text) {
  if (OTHER_DIGIT.test(text)) throw new RangeError('type the number with the digits 0-9');
  const s = pyStrip(text);
  if (SPECIAL.test(s)) return null;
  if (!DECIMAL.test(s)) return null;
  const x = Number(s.replace(/_/g, ''));  // correctly rounded, as Python's
  return Number.isFinite(x) ? x : null;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

// zlib.crc32 of the bytes
export function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const UTF8 = new TextEncoder();

// the distinct words and word pairs of a text, lowercased, the first maxTokens (edgerec's _grams)
export function grams(text, maxTokens) {
  const words = text.toLowerCase().match(WORD) || [];
  const all = [...words];
  for (let i = 0; i + 1 < words.length; i++) all.push(`${words[i]} ${words[i + 1]}`);
  return [...new Set(all)].slice(0, maxTokens);
}

// equal weights summing to 1, a repeated index once with the summed weight, in first-seen order (edgerec's _mean)
function mean(indices) {
  const counts = new Map();
  for (const i of indices) counts.set(i, (counts.get(i) || 0) + 1);
  return [...counts].map(([i, c]) => [i, c / indices.length]);
}

class Column {
  constructor(d) {
    if (!d || typeof d.name !== 'string' || !KINDS.has(d.kind) || !Number.isInteger(d.offset)) {
      throw new Error(`malformed column ${JSON.stringify(d && d.name)}`);
    }
    Object.assign(this, {name: d.name, kind: d.kind, offset: d.offset});
    this.vocab = (d.vocab || []).map(String);
    this.edges = (d.edges || []).map(Number);
    this.mean = Number(d.mean ?? 0);
    this.scale = Number(d.scale ?? 1);
    this.buckets = Number(d.buckets ?? 0);
    this.separator = String(d.separator ?? '|');
    this.maxTokens = Number(d.max_tokens ?? 0);
    if (d.kind === 'text' && d.hash !== 'crc32') throw new Error(`column ${d.name}: unknown text hash ${d.hash}`);
    if (d.kind === 'multi' && !this.separator) throw new Error(`column ${d.name}: empty separator`);
    this.index = new Map(this.vocab.map((c, k) => [c, this.offset + 1 + k]));
  }

  get size() {
    if (this.kind === 'categorical' || this.kind === 'multi') return 1 + this.vocab.length;
    if (this.kind === 'numeric') return 2 + this.edges.length;
    return 1 + (this.kind === 'scaled' ? 1 : this.buckets);
  }

  get width() {
    if (this.kind === 'multi') return this.vocab.length + 1;
    if (this.kind === 'text') return Math.max(1, Math.min(this.maxTokens, this.buckets));
    return 1;
  }

  // the cell (text as typed, or null) as [index, weight] pairs; `seen` collects what Python counts (missing,
  // unknown, invalid) and the values behind them
  encode(cell, seen) {
    if (cell === null) {
      seen.missing.push(this.name);
      return [[this.offset, 1]];
    }
    if (this.kind === 'categorical' || this.kind === 'multi') {
      const cats = this.kind === 'categorical' ? [cell] :
        [...new Set(cell.split(this.separator).map(pyStrip).filter(Boolean))];
      if (!cats.length) {
        seen.missing.push(this.name);
        return [[this.offset, 1]];
      }
      const found = cats.map((c) => this.index.get(c) ?? this.offset);
      cats.forEach((c, n) => { if (found[n] === this.offset) seen.unknown.push({column: this.name, value: c}); });
      return mean(found);
    }
    if (this.kind === 'text') {
      const gs = grams(cell, this.maxTokens);
      if (!gs.length) {
        seen.missing.push(this.name);
        return [[this.offset, 1]];
      }
      return mean(gs.map((g) => this.offset + 1 + crc32(UTF8.encode(`${this.name}\x1f${g}`)) % this.buckets));
    }
    let x;
    try {
      x = pyNumber(cell);
    } catch (e) {
      seen.invalid.push({column: this.name, value: cell, why: e.message});
      return [[this.offset, 1]];
    }
    if (x === null) {
      seen.invalid.push({column: this.name, value: cell, why: null});
      return [[this.offset, 1]];
    }
    if (this.kind === 'numeric') {
      let bucket = 0;  // numpy's searchsorted(edges, x, side="right")
      while (bucket < this.edges.length && this.edges[bucket] <= x) bucket++;
      return [[this.offset + 1 + bucket, 1]];
    }
    return [[this.offset + 1, Math.min(Math.max((x - this.mean) / this.scale, -Z_CLIP), Z_CLIP)]];
  }
}

export class FeatureEncoder {
  // `d`: user_encoder.json; `width`: the user_features signature's input length (the manifest's)
  constructor(d, width) {
    if (!d || d.format !== FORMAT) throw new Error(`not an edgerec feature encoder (format ${FORMAT})`);
    if (d.format_version !== FORMAT_VERSION) {
      throw new Error(`feature encoder version ${d.format_version} is not ${FORMAT_VERSION}`);
    }
    if (!Array.isArray(d.columns) || !d.columns.length) throw new Error('the feature encoder has no columns');
    this.side = d.side;
    this.idColumn = d.id_column;
    this.columns = d.columns.map((c) => new Column(c));
    const size = 1 + this.columns.reduce((a, c) => a + c.size, 0);
    if (size !== d.size) throw new Error(`the columns take ${size} indices, the encoder says ${d.size}`);
    this.size = size;
    this.width = this.columns.reduce((a, c) => a + c.width, 0);
    if (this.width !== width) throw new Error(`the encoder's width is ${this.width}, user_features takes ${width}`);
  }

  // {column name: text as typed} (a column left out, or blank, is missing) -> {indices Int32Array [width],
  // weights Float32Array [width], missing: [names], unknown: [{column, value}], invalid: [{column, value, why}]}
  encode(values) {
    const seen = {missing: [], unknown: [], invalid: []};
    const pairs = [];
    for (const c of this.columns) {
      const raw = values[c.name];
      const cell = raw === undefined || raw === null ? null : pyStrip(String(raw)) || null;
      pairs.push(...c.encode(cell, seen));
    }
    const indices = new Int32Array(this.width);  // padding: index 0, weight 0
    const weights = new Float32Array(this.width);
    pairs.forEach(([i, w], n) => {
      indices[n] = i;
      weights[n] = w;
    });
    return {indices, weights, ...seen};
  }
}
