/**
 * A small renderer for the subset of Go templates + Sprig that helm/tether/templates uses, so the
 * chart can be rendered and checked without helm or a cluster. Supported: text with {{- -}}
 * trimming, comments, define/include, if/else if/else, with, range (lists and maps, with
 * `$k, $v :=`), variables ($, $x :=), field chains (.Values.a.b, $x.y, pipelines, and
 * the functions in FUNCS. Anything else throws, so a template using an unsupported construct
 * fails the test instead of rendering wrongly. Like Helm, a field of a missing map is an error.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';

type Node =
  | { t: 'text'; v: string }
  | { t: 'out'; expr: string }
  | { t: 'if'; branches: { cond: string; body: Node[] }[]; else: Node[] }
  | { t: 'with'; expr: string; body: Node[]; else: Node[] }
  | { t: 'range'; expr: string; keyVar?: string; valVar?: string; body: Node[]; else: Node[] };

export class TemplateError extends Error {}
/** Raised by `fail` and `required`: the chart refused the values, as `helm template` would. */
export class ChartFailure extends Error {}

// ---- lexing and parsing -------------------------------------------------------------------------

interface Tok { kind: 'text' | 'action'; v: string }

function lex(src: string): Tok[] {
  const toks: Tok[] = [];
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m; (m = re.exec(src)); ) {
    let text = src.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1]) text = text.replace(/\s+$/, '');
    if (text) toks.push({ kind: 'text', v: text });
    const body = m[2]!.trim();
    if (!(body.startsWith('/*') && body.endsWith('*/'))) toks.push({ kind: 'action', v: body });
    trimNext = !!m[3];
    last = re.lastIndex;
  }
  let tail = src.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  if (tail) toks.push({ kind: 'text', v: tail });
  return toks;
}

function parse(src: string, defines: Map<string, Node[]>): Node[] {
  const toks = lex(src);
  let i = 0;
  function block(stopAt: string[]): { nodes: Node[]; stop: string } {
    const nodes: Node[] = [];
    while (i < toks.length) {
      const tok = toks[i++]!;
      if (tok.kind === 'text') {
        nodes.push({ t: 'text', v: tok.v });
        continue;
      }
      const a = tok.v;
      const kw = /^(if|else if|else|end|range|with|define)\b\s*/.exec(a);
      const word = kw?.[1];
      if (word && stopAt.includes(word)) return { nodes, stop: a };
      if (word === 'if') {
        const branches = [{ cond: a.slice(kw![0].length), body: [] as Node[] }];
        let els: Node[] = [];
        for (;;) {
          const r = block(['else if', 'else', 'end']);
          branches.at(-1)!.body = r.nodes;
          if (r.stop.startsWith('else if')) branches.push({ cond: r.stop.slice(7).trim(), body: [] });
          else if (r.stop === 'else') {
            els = block(['end']).nodes;
            break;
          } else break;
        }
        nodes.push({ t: 'if', branches, else: els });
      } else if (word === 'with' || word === 'range') {
        let expr = a.slice(kw![0].length);
        let keyVar: string | undefined;
        let valVar: string | undefined;
        const decl = /^(\$\w+)\s*(?:,\s*(\$\w+))?\s*:=\s*([\s\S]+)$/.exec(expr);
        if (decl) {
          if (word === 'with') throw new TemplateError(`unsupported: with with declaration: ${a}`);
          [keyVar, valVar, expr] = decl[2] ? [decl[1], decl[2], decl[3]!] : [undefined, decl[1], decl[3]!];
        }
        const r = block(['else', 'end']);
        const els = r.stop === 'else' ? block(['end']).nodes : [];
        nodes.push(word === 'with' ? { t: 'with', expr, body: r.nodes, else: els } : { t: 'range', expr, keyVar, valVar, body: r.nodes, else: els });
      } else if (word === 'define') {
        const name = JSON.parse(a.slice(kw![0].length));
        defines.set(name, block(['end']).nodes);
      } else if (word) {
        throw new TemplateError(`unexpected {{ ${a} }}`);
      } else {
        nodes.push({ t: 'out', expr: a });
      }
    }
    if (stopAt.length) throw new TemplateError(`missing {{ end }} (expected one of ${stopAt.join(', ')})`);
    return { nodes, stop: '' };
  }
  return block([]).nodes;
}

// ---- expressions --------------------------------------------------------------------------------

type Scope = { dot: unknown; vars: Map<string, unknown>; parent?: Scope };
function lookupVar(s: Scope, name: string): unknown {
  for (let c: Scope | undefined = s; c; c = c.parent) if (c.vars.has(name)) return c.vars.get(name);
  throw new TemplateError(`undefined variable ${name}`);
}
function setVar(s: Scope, name: string, v: unknown) {
  for (let c: Scope | undefined = s; c; c = c.parent) if (c.vars.has(name)) return void c.vars.set(name, v);
  s.vars.set(name, v);
}

function tokenizeExpr(expr: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|:=|\||\(|\)|,|[^\s|()",]+)/gy;
  for (let m; (m = re.exec(expr)); ) out.push(m[1]!);
  if (out.join('').replace(/\s/g, '') !== expr.replace(/\s/g, '')) throw new TemplateError(`cannot tokenize: ${expr}`);
  return out;
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function field(base: unknown, path: string[], what: string): unknown {
  let v = base;
  for (const p of path) {
    if (v === undefined || v === null) throw new TemplateError(`nil pointer evaluating ${what}: no ${p}`);
    if (typeof v !== 'object') throw new TemplateError(`can't evaluate field ${p} in ${typeof v} (${what})`);
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

export function toYaml(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  return YAML.stringify(v, { lineWidth: 0 }).replace(/\n$/, '');
}

function goString(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') throw new TemplateError(`printing a ${Array.isArray(v) ? 'list' : 'map'} directly: use toYaml (${JSON.stringify(v).slice(0, 60)})`);
  return String(v);
}
function toInt(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : typeof v === 'boolean' ? Number(v) : 0;
  return Math.trunc(n);
}

export class Chart {
  readonly defines = new Map<string, Node[]>();
  readonly files = new Map<string, Node[]>();
  readonly meta: Record<string, unknown>;
  readonly defaults: Record<string, unknown>;

  constructor(readonly dir: string) {
    this.meta = YAML.parse(readFileSync(join(dir, 'Chart.yaml'), 'utf8'));
    this.defaults = YAML.parse(readFileSync(join(dir, 'values.yaml'), 'utf8'));
    for (const f of readdirSync(join(dir, 'templates')).sort()) {
      this.files.set(f, parse(readFileSync(join(dir, 'templates', f), 'utf8'), this.defines));
    }
  }

  private readonly FUNCS: Record<string, (...a: any[]) => unknown> = {
    default: (d, v) => (truthy(v) ? v : d),
    trunc: (n, s) => goString(s).slice(0, n),
    trimSuffix: (suf, s) => (goString(s).endsWith(suf) ? goString(s).slice(0, -suf.length) : goString(s)),
    contains: (sub, s) => goString(s).includes(goString(sub)),
    printf: (fmt: string, ...args) => {
      let i = 0;
      return fmt.replace(/%[sdv%]/g, (m) => (m === '%%' ? '%' : goString(args[i++])));
    },
    print: (...args) => args.map(goString).join(''),
    quote: (...args) => args.map((a) => JSON.stringify(goString(a))).join(' '),
    toString: (v) => goString(v),
    b64enc: (v) => Buffer.from(goString(v)).toString('base64'),
    sha256sum: (v) => createHash('sha256').update(goString(v)).digest('hex'),
    int: toInt,
    add: (...a) => a.reduce((x, y) => x + toInt(y), 0),
    div: (a, b) => Math.trunc(toInt(a) / toInt(b)),
    le: (a, b) => a <= b,
    lt: (a, b) => a < b,
    ge: (a, b) => a >= b,
    gt: (a, b) => a > b,
    eq: (a, ...bs) => bs.some((b) => a === b),
    ne: (a, b) => a !== b,
    not: (v) => !truthy(v),
    and: (...a) => a.find((x) => !truthy(x)) ?? a.at(-1),
    or: (...a) => a.find((x) => truthy(x)) ?? a.at(-1),
    toYaml,
    nindent: (n, s) => '\n' + goString(s).split('\n').map((l) => (l ? ' '.repeat(n) + l : l)).join('\n'),
    indent: (n, s) => goString(s).split('\n').map((l) => (l ? ' '.repeat(n) + l : l)).join('\n'),
    required: (msg, v) => {
      if (!truthy(v)) throw new ChartFailure(msg);
      return v;
    },
    fail: (msg) => {
      throw new ChartFailure(msg);
    },
  };

  private evalPipeline(toks: string[], scope: Scope): unknown {
    // Declaration / assignment: $x := pipeline
    if (toks.length > 2 && toks[0]!.startsWith('$') && toks[1] === ':=') {
      const v = this.evalPipeline(toks.slice(2), scope);
      scope.vars.set(toks[0]!, v);
      return undefined;
    }
    const cmds: string[][] = [[]];
    let depth = 0;
    for (const t of toks) {
      if (t === '(') depth++;
      if (t === ')') depth--;
      if (t === '|' && depth === 0) cmds.push([]);
      else cmds.at(-1)!.push(t);
    }
    let piped: { v: unknown } | undefined;
    for (const c of cmds) piped = { v: this.evalCommand(c, scope, piped) };
    return piped!.v;
  }

  private evalCommand(toks: string[], scope: Scope, piped?: { v: unknown }): unknown {
    if (toks.length === 0) throw new TemplateError('empty command');
    const head = toks[0]!;
    const isFunc = /^[A-Za-z_]\w*$/.test(head) && !['true', 'false', 'nil'].includes(head);
    const args: unknown[] = [];
    let fnFromField: ((...a: unknown[]) => unknown) | undefined;
    for (let i = isFunc ? 1 : 0; i < toks.length; ) {
      const [v, next] = this.evalOperand(toks, i, scope);
      if (i === 0 && typeof v === 'function') fnFromField = v as (...a: unknown[]) => unknown;
      else args.push(v);
      i = next;
    }
    if (piped) args.push(piped.v);
    if (isFunc) {
      if (head === 'include') {
        const [name, dot] = args as [string, unknown];
        return this.include(name, dot, scope);
      }
      const f = this.FUNCS[head];
      if (!f) throw new TemplateError(`function "${head}" not supported by helm-render`);
      return f(...args);
    }
    if (fnFromField) return fnFromField(...args);
    if (args.length !== 1) throw new TemplateError(`can't give argument to non-function: ${toks.join(' ')}`);
    return args[0];
  }

  private evalOperand(toks: string[], i: number, scope: Scope): [unknown, number] {
    const t = toks[i]!;
    const next = i + 1;
    if (t === '(') {
      let depth = 1;
      let j = i + 1;
      for (; j < toks.length && depth; j++) {
        if (toks[j] === '(') depth++;
        if (toks[j] === ')') depth--;
      }
      const v = this.evalPipeline(toks.slice(i + 1, j - 1), scope);
      // `(expr).Field` is not supported: the tokenizer cannot tell it from `(expr) .Field`.
      return [v, j];
    }
    if (t.startsWith('"')) return [JSON.parse(t), next];
    if (t.startsWith('`')) return [t.slice(1, -1), next];
    if (/^-?\d+(\.\d+)?$/.test(t)) return [Number(t), next];
    if (t === 'true' || t === 'false') return [t === 'true', next];
    if (t === 'nil') return [null, next];
    if (t === '.') return [scope.dot, next];
    if (t.startsWith('.')) return [field(scope.dot, t.slice(1).split('.'), t), next];
    if (t.startsWith('$')) {
      const [name, ...path] = t.split('.');
      return [field(lookupVar(scope, name!), path, t), next];
    }
    throw new TemplateError(`unsupported operand ${t}`);
  }

  private include(name: string, dot: unknown, scope: Scope): string {
    const nodes = this.defines.get(name) ?? (name.startsWith(this.basePath() + '/') ? this.files.get(name.slice(this.basePath().length + 1)) : undefined);
    if (!nodes) throw new TemplateError(`include: no template "${name}"`);
    return this.exec(nodes, { dot, vars: new Map([['$', dot]]) }, scope);
  }

  private basePath(): string {
    return `${this.meta.name}/templates`;
  }

  private exec(nodes: Node[], scope: Scope, _caller?: Scope): string {
    let out = '';
    for (const n of nodes) {
      switch (n.t) {
        case 'text':
          out += n.v;
          break;
        case 'out': {
          const v = this.evalPipeline(tokenizeExpr(n.expr), scope);
          if (!/^\$\w+\s*:?=/.test(n.expr)) out += goString(v);
          break;
        }
        case 'if': {
          const b = n.branches.find((br) => truthy(this.evalPipeline(tokenizeExpr(br.cond), scope)));
          out += this.exec(b ? b.body : n.else, { dot: scope.dot, vars: new Map(), parent: scope });
          break;
        }
        case 'with': {
          const v = this.evalPipeline(tokenizeExpr(n.expr), scope);
          out += truthy(v) ? this.exec(n.body, { dot: v, vars: new Map(), parent: scope }) : this.exec(n.else, { dot: scope.dot, vars: new Map(), parent: scope });
          break;
        }
        case 'range': {
          const v = this.evalPipeline(tokenizeExpr(n.expr), scope);
          const entries: [unknown, unknown][] = Array.isArray(v)
            ? v.map((x, k) => [k, x])
            : v && typeof v === 'object'
              ? Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]])
              : [];
          if (v && typeof v !== 'object') throw new TemplateError(`range over ${typeof v}`);
          if (!entries.length) out += this.exec(n.else, { dot: scope.dot, vars: new Map(), parent: scope });
          for (const [k, x] of entries) {
            const s: Scope = { dot: x, vars: new Map(), parent: scope };
            if (n.keyVar) s.vars.set(n.keyVar, k);
            if (n.valVar) s.vars.set(n.valVar, x);
            out += this.exec(n.body, s);
          }
          break;
        }
      }
    }
    return out;
  }

  /** Values = deep merge of values.yaml and overrides (objects merge, everything else replaces). */
  values(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const merge = (a: any, b: any): any => {
      if (b && typeof b === 'object' && !Array.isArray(b) && a && typeof a === 'object' && !Array.isArray(a)) {
        const o = { ...a };
        for (const k of Object.keys(b)) o[k] = merge(a[k], b[k]);
        return o;
      }
      return b === undefined ? a : b;
    };
    return merge(structuredClone(this.defaults), overrides);
  }

  /** Renders every template (not partials) like `helm template`: file name → text. */
  render(overrides: Record<string, unknown> = {}, release = { Name: 'tether', Namespace: 'default' }): Map<string, string> {
    const root = {
      Values: this.values(overrides),
      Release: { ...release, Service: 'Helm', IsInstall: true, IsUpgrade: false },
      Chart: { Name: this.meta.name, Version: this.meta.version, AppVersion: this.meta.appVersion },
      Template: { BasePath: this.basePath() },
      Files: { Get: (p: string) => readFileSync(join(this.dir, p), 'utf8') },
      Capabilities: { KubeVersion: { Version: 'v1.30.0' } },
    };
    const out = new Map<string, string>();
    for (const [f, nodes] of this.files) {
      if (f.startsWith('_')) continue;
      out.set(f, this.exec(nodes, { dot: root, vars: new Map([['$', root]]) }));
    }
    return out;
  }
}

/** Splits rendered templates into parsed manifests (empty documents dropped). */
export function manifests(rendered: Map<string, string>): { file: string; doc: any }[] {
  const docs: { file: string; doc: any }[] = [];
  for (const [file, text] of rendered) {
    if (!file.endsWith('.yaml') && !file.endsWith('.yml')) continue;
    for (const d of YAML.parseAllDocuments(text)) {
      if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}\n${text}`);
      const js = d.toJS();
      if (js !== null && js !== undefined) docs.push({ file, doc: js });
    }
  }
  return docs;
}
