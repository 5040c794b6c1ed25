/**
 * What the fault suite found and is not fixed yet, each as the test it must pass. Marked `todo`:
 * `bun test` skips them; `bun test --todo test/faults/known-bugs.test.ts` runs them (each fails
 * today, and says "remove .todo" once fixed). A minute or so each; the bench's rows of the same
 * names measure them too (`bun run bench/faults.ts --scenario pg-embedded-kill`).
 */
import { describe, expect, test } from 'bun:test';
import { testServerUrl } from '../support/database.ts';
import { pgServerAt } from './harness.ts';
import { SCENARIOS, type Context } from './scenarios.ts';

const ctx = (): Context => ({ pg: pgServerAt(testServerUrl()), full: false, smoke: false, seed: 1, memoryBoundMb: 512, progress: () => {} });

const failedChecks = (checks: Record<string, boolean>): string[] => Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name);

describe('known bugs', () => {
  // Nothing restarts the embedded server when it dies. Aqueduct now exits 1 with the reason (a
  // supervisor or the image's restart policy brings both back, resuming from the stored cursor);
  // restarting the server in-process, as this asks, is not built.
  test.todo('embedded PostgreSQL: the postmaster killed, ingestion resumes by itself', async () => {
    const figure = await SCENARIOS['pg-embedded-kill']!.run(ctx());
    expect(failedChecks(figure.checks)).toEqual([]);
  }, 240_000);
});
