/**
 * The base of every typed decoding error: a fixed `reason` (from a small union the caller counts
 * metrics by) and a human message. Decoders throw these; stage loops catch and count by reason.
 */
export class ReasonError<Reason extends string> extends Error {
  readonly reason: Reason;

  constructor(reason: Reason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}
