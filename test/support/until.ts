/**
 * Polls `condition` until it holds, failing the test after `timeoutMs`.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 30_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting`);
    await Bun.sleep(intervalMs);
  }
}
