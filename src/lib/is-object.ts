/**
 * Whether parsed JSON (or any unknown value) is an object with named fields: not null, not an array.
 */
export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
