/**
 * XRPC query parameters, parsed and validated by the method's own lexicon schema.
 *
 * `parseParams(schema, search)` reads the URL's search parameters with the types the lexicon
 * declares (integer, boolean, string, arrays of them), applies the lexicon defaults, clamps
 * integers that carry a range (`limit=1000` becomes the maximum, as the reference AppView does)
 * and validates the result with @atcute/lexicons. It never trusts the input: anything that does not
 * fit throws `XrpcError(400, 'InvalidRequest')` with a message naming the parameter.
 */
import { safeParse, type BaseSchema, type InferOutput, type ObjectSchema } from '@atcute/lexicons/validations';
import { XrpcError } from '../errors.ts';

type Scalar = 'integer' | 'boolean' | 'string' | 'unknown';

interface ParamSpec {
  readonly scalar: Scalar;
  readonly array: boolean;
  readonly range: { readonly min: number; readonly max: number } | null;
}

const MAX_VALUE_CHARS = 10_000;
const MAX_ARRAY_ITEMS = 100;

const specCache = new WeakMap<object, ReadonlyMap<string, ParamSpec>>();

export function parseParams<S extends ObjectSchema>(schema: S, search: URLSearchParams): InferOutput<S> {
  const specs = specsOf(schema);
  const input: Record<string, unknown> = {};
  for (const [name, spec] of specs) {
    const raw = search.getAll(name);
    if (raw.length === 0) continue;
    for (const value of raw) {
      if (value.length > MAX_VALUE_CHARS) throw invalid(`${name} is too long`);
      // no string PostgreSQL holds, nor any identifier, contains U+0000
      if (value.includes('\u0000')) throw invalid(`${name} may not contain U+0000`);
    }
    if (spec.array) {
      if (raw.length > MAX_ARRAY_ITEMS) throw invalid(`${name} has too many values`);
      input[name] = raw.map((value) => coerce(name, spec, value));
    } else {
      if (raw.length > 1) throw invalid(`${name} must be given once`);
      input[name] = coerce(name, spec, raw[0]!);
    }
  }
  const result = safeParse(schema, input);
  if (!result.ok) {
    const issue = result.issues[0];
    const path = issue ? issue.path.join('.') : '';
    throw invalid(path ? `invalid parameter ${path}: ${result.message}` : result.message);
  }
  return result.value as InferOutput<S>;
}

function coerce(name: string, spec: ParamSpec, value: string): unknown {
  switch (spec.scalar) {
    case 'integer': {
      if (!/^-?\d{1,15}$/.test(value)) throw invalid(`${name} must be an integer`);
      const number = Number(value);
      return spec.range ? Math.min(spec.range.max, Math.max(spec.range.min, number)) : number;
    }
    case 'boolean':
      if (value === 'true') return true;
      if (value === 'false') return false;
      throw invalid(`${name} must be true or false`);
    default:
      return value;
  }
}

function specsOf(schema: ObjectSchema): ReadonlyMap<string, ParamSpec> {
  let specs = specCache.get(schema);
  if (!specs) {
    const built = new Map<string, ParamSpec>();
    for (const [name, field] of Object.entries(schema.shape as Record<string, BaseSchema>)) built.set(name, specOf(field));
    specs = built;
    specCache.set(schema, specs);
  }
  return specs;
}

function specOf(field: BaseSchema): ParamSpec {
  let schema = unwrap(field);
  let array = false;
  if (schema.type === 'array') {
    array = true;
    schema = unwrap((schema as unknown as { item: BaseSchema }).item);
  }
  const scalar: Scalar = schema.type === 'integer' || schema.type === 'boolean' || schema.type === 'string' ? schema.type : 'unknown';
  const constraints = (schema as { constraints?: ReadonlyArray<{ type: string; min?: number; max?: number }> }).constraints ?? [];
  const range = constraints.find((constraint) => constraint.type === 'integer_range');
  return {
    scalar,
    array,
    range: range && range.min !== undefined && range.max !== undefined ? { min: range.min, max: range.max } : null,
  };
}

function unwrap(schema: BaseSchema): BaseSchema {
  let current = schema;
  while (current.type === 'optional' || current.type === 'nullable') current = (current as unknown as { wrapped: BaseSchema }).wrapped;
  return current;
}

export function invalid(message: string): XrpcError {
  return new XrpcError(400, 'InvalidRequest', message);
}
