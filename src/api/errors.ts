/**
 * HTTP errors, mapped in one place.
 *
 * Handlers throw `XrpcError` (an `error` name from the lexicon and a message) and the Elysia
 * `onError` hook installed by `errorHandling` turns it into `{ error, message }` JSON with the
 * right status. Unknown routes are a JSON 404; anything unexpected is a plain 500 with no stack,
 * logged once with a bounded message.
 */
import { Elysia } from 'elysia';
import type { Logger } from '../log.ts';

export class XrpcError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
    this.name = 'XrpcError';
  }
}

export function errorHandling(log: Logger) {
  return new Elysia({ name: 'error-handling' }).onError({ as: 'global' }, ({ code, error, set, request }) => {
    set.headers['content-type'] = 'application/json';
    if (error instanceof XrpcError) {
      set.status = error.status;
      return { error: error.error, message: error.message };
    }
    if (code === 'NOT_FOUND') {
      set.status = 404;
      return { error: 'NotFound', message: `no route for ${new URL(request.url).pathname}` };
    }
    if (code === 'VALIDATION' || code === 'PARSE') {
      set.status = 400;
      return { error: 'InvalidRequest', message: 'the request could not be parsed' };
    }
    log.error('unhandled error in a request', { path: new URL(request.url).pathname, error });
    set.status = 500;
    return { error: 'InternalServerError', message: 'Internal Server Error' };
  });
}
