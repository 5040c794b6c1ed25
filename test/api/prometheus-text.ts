/**
 * A strict parser of the Prometheus text format 0.0.4, as a scraper reads it, for the tests of
 * /metrics: it throws on anything a scraper would refuse (a sample before its TYPE, a bad escape,
 * a duplicate series, a counter not named `*_total` or below 0, a missing final newline).
 */

export type Parsed = Map<string, { type: string; help: string; samples: Array<{ name: string; labels: Record<string, string>; value: number }> }>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function parsePrometheus(text: string): Parsed {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families: Parsed = new Map();
  const seriesSeen = new Set<string>();
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    if (line === '') throw new Error(`empty ${where}`);
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!match) throw new Error(`bad comment ${where}`);
      const [, kind, name = '', rest = ''] = match;
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${where}`);
      const family = families.get(name) ?? { type: '', help: '', samples: [] };
      if (family.samples.length) throw new Error(`${kind} after samples ${where}`);
      if (kind === 'TYPE') {
        if (family.type) throw new Error(`second TYPE ${where}`);
        if (!['counter', 'gauge', 'summary', 'histogram', 'untyped'].includes(rest)) throw new Error(`bad type ${where}`);
        family.type = rest;
      } else {
        if (family.help) throw new Error(`second HELP ${where}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`bad escape in HELP ${where}`);
        family.help = rest.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
      }
      families.set(name, family);
      return;
    }
    const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!head) throw new Error(`bad sample ${where}`);
    const name = head[1] ?? '';
    let at = name.length;
    const labels: Record<string, string> = {};
    if (line[at] === '{') {
      at++;
      while (line[at] !== '}') {
        const labelMatch = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(at));
        if (!labelMatch) throw new Error(`bad label ${where}`);
        const labelName = labelMatch[1] ?? '';
        if (!LABEL_NAME.test(labelName) || labelName.startsWith('__')) throw new Error(`bad label name ${where}`);
        at += labelMatch[0].length;
        let value = '';
        for (;;) {
          const c = line[at];
          if (c === undefined) throw new Error(`unterminated label value ${where}`);
          if (c === '"') break;
          if (c === '\\') {
            const next = line[at + 1];
            if (next === '\\') value += '\\';
            else if (next === '"') value += '"';
            else if (next === 'n') value += '\n';
            else throw new Error(`bad escape in label value ${where}`);
            at += 2;
            continue;
          }
          value += c;
          at++;
        }
        at++;
        if (labelName in labels) throw new Error(`repeated label ${where}`);
        labels[labelName] = value;
        if (line[at] === ',') at++;
        else if (line[at] !== '}') throw new Error(`expected , or } ${where}`);
      }
      at++;
    }
    const rest = line.slice(at);
    const valueMatch = /^ (\S+)( -?\d+)?$/.exec(rest);
    if (!valueMatch) throw new Error(`bad value ${where}`);
    const raw = valueMatch[1] ?? '';
    const value = raw === 'NaN' ? Number.NaN : raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (!/^(NaN|[+-]Inf|-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/.test(raw)) throw new Error(`bad number ${where}`);
    const family = families.get(name);
    if (!family?.type) throw new Error(`sample before its TYPE ${where}`);
    if (family.type === 'counter' && !name.endsWith('_total')) throw new Error(`counter without _total ${where}`);
    if (family.type === 'counter' && !(value >= 0)) throw new Error(`negative counter ${where}`);
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seriesSeen.has(series)) throw new Error(`duplicate series ${where}`);
    seriesSeen.add(series);
    family.samples.push({ name, labels, value });
  });
  return families;
}

export function sampleValue(parsed: Parsed, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = parsed.get(name);
  const sample = family?.samples.find((s) => JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
  return sample?.value;
}
