/**
 * A lexicon document (JSON) compiled to @atcute/lexicons validation schemas, for the interop tests.
 *
 * Aqueduct has no lexicon compiler of its own: its record schemas come precompiled in
 * @atcute/bluesky (what @atcute/lex-cli emits), and `parseRecord` validates with them. To run the
 * interop record-data vectors, which use their own test lexicon (lexicon/catalog/record.json),
 * `compileLexicon` builds the schemas the same way lex-cli does: records `$type`-tagged with their
 * NSID, named object defs with an optional `$type` of `<nsid>#<name>`, tokens as literals, refs
 * resolved, unions as variants, each constraint as the library's constraint. It covers the types
 * and fields of the record, object and primitive defs; anything else throws, so a vector cannot
 * pass by being skipped.
 */
import * as v from '@atcute/lexicons/validations';
import { isObject } from '../../src/lib/is-object.ts';

type Def = Record<string, unknown>;

export interface LexiconDocument {
  readonly lexicon: number;
  readonly id: string;
  readonly defs: Readonly<Record<string, Def>>;
}

const FORMATS: Readonly<Record<string, () => v.BaseSchema>> = {
  'at-identifier': v.actorIdentifierString,
  'at-uri': v.resourceUriString,
  cid: v.cidString,
  datetime: v.datetimeString,
  did: v.didString,
  handle: v.handleString,
  language: v.languageCodeString,
  nsid: v.nsidString,
  'record-key': v.recordKeyString,
  tid: v.tidString,
  uri: v.genericUriString,
};

const num = (def: Def, field: string): number | undefined => {
  const value = def[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new Error(`${field} is not a number`);
  return value;
};
const strings = (def: Def, field: string): string[] => {
  const value = def[field] ?? [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new Error(`${field} is not a list of strings`);
  return value;
};
const constrained = (schema: v.BaseSchema, constraints: ReadonlyArray<object | null>): v.BaseSchema => {
  const present = constraints.filter((constraint) => constraint !== null);
  return present.length === 0 ? schema : (v.constrain(schema, present as never) as v.BaseSchema);
};
/** min/max as one range constraint, or null when neither is given. */
const range = <C extends object>(def: Def, minField: string, maxField: string, make: (min: number, max: number) => C): C | null => {
  const min = num(def, minField);
  const max = num(def, maxField);
  return min === undefined && max === undefined ? null : make(min ?? 0, max ?? Number.MAX_SAFE_INTEGER);
};
const literals = (def: Def): v.BaseSchema | null => {
  if (def.const !== undefined) return v.literal(def.const as string | number | boolean);
  if (def.enum !== undefined) return v.literalEnum(def.enum as readonly (string | number)[]);
  return null;
};

export function compileLexicon(doc: LexiconDocument): ReadonlyMap<string, v.BaseSchema> {
  const compiled = new Map<string, v.BaseSchema>();
  const building = new Set<string>();

  const refName = (ref: string): string => {
    const [nsid, name = 'main'] = ref.startsWith('#') ? [doc.id, ref.slice(1)] : ref.split('#');
    if (nsid !== doc.id) throw new Error(`ref to another lexicon: ${ref}`);
    return name;
  };

  const named = (name: string): v.BaseSchema => {
    const done = compiled.get(name);
    if (done) return done;
    if (building.has(name)) throw new Error(`ref cycle through ${name}`);
    const def = doc.defs[name];
    if (!def) throw new Error(`no def ${name}`);
    building.add(name);
    const fullName = name === 'main' ? doc.id : `${doc.id}#${name}`;
    const schema =
      def.type === 'record'
        ? v.record(recordKey(String(def.key)), object(def.record as Def, v.literal(doc.id)) as v.ObjectSchema)
        : def.type === 'object'
          ? object(def, v.optional(v.literal(fullName)))
          : def.type === 'token'
            ? v.literal(fullName)
            : field(def);
    building.delete(name);
    compiled.set(name, schema);
    return schema;
  };

  const recordKey = (key: string) => {
    if (key.startsWith('literal:')) return v.literal(key.slice('literal:'.length));
    if (key === 'tid') return v.tidString();
    if (key === 'nsid') return v.nsidString();
    if (key === 'any') return v.recordKeyString();
    throw new Error(`record key type ${key}`);
  };

  const object = (def: Def, $type: v.BaseSchema | null): v.BaseSchema => {
    if (def.type !== 'object' || !isObject(def.properties)) throw new Error('not an object def');
    const required = new Set(strings(def, 'required'));
    const nullable = new Set(strings(def, 'nullable'));
    const shape: Record<string, v.BaseSchema> = $type ? { $type } : {};
    for (const [key, property] of Object.entries(def.properties)) {
      if (!isObject(property)) throw new Error(`property ${key} is not a def`);
      let schema = field(property);
      if (nullable.has(key)) schema = v.nullable(schema);
      if (!required.has(key)) schema = property.default === undefined ? v.optional(schema) : v.optional(schema, property.default as never);
      shape[key] = schema;
    }
    return v.object(shape);
  };

  const field = (def: Def): v.BaseSchema => {
    switch (def.type) {
      case 'boolean':
        return literals(def) ?? v.boolean();
      case 'integer':
        return literals(def) ?? constrained(v.integer(), [range(def, 'minimum', 'maximum', (min, max) => v.integerRange(min, max))]);
      case 'string': {
        const format = def.format === undefined ? null : FORMATS[String(def.format)];
        if (format === undefined) throw new Error(`string format ${String(def.format)}`);
        return (
          literals(def) ??
          constrained(format ? format() : v.string(), [
            range(def, 'minLength', 'maxLength', (min, max) => v.stringLength(min, max)),
            range(def, 'minGraphemes', 'maxGraphemes', (min, max) => v.stringGraphemes(min, max)),
          ])
        );
      }
      case 'bytes':
        return constrained(v.bytes(), [range(def, 'minLength', 'maxLength', (min, max) => v.bytesSize(min, max))]);
      case 'cid-link':
        return v.cidLink();
      case 'blob': {
        const maxSize = num(def, 'maxSize');
        const accept = strings(def, 'accept');
        return constrained(v.blob(), [maxSize === undefined ? null : v.blobSize(maxSize), accept.length === 0 ? null : v.blobAccept(accept)]);
      }
      case 'unknown':
        return v.unknown();
      case 'array': {
        if (!isObject(def.items)) throw new Error('array without items');
        return constrained(v.array(field(def.items)), [range(def, 'minLength', 'maxLength', (min, max) => v.arrayLength(min, max))]);
      }
      case 'object':
        return object(def, null);
      case 'ref':
        return named(refName(String(def.ref)));
      case 'union': {
        const members = strings(def, 'refs').map((ref) => named(refName(ref)));
        return v.variant(members as never, def.closed === true);
      }
      default:
        throw new Error(`def type ${String(def.type)}`);
    }
  };

  for (const name of Object.keys(doc.defs)) named(name);
  return compiled;
}
