/**
 * One way every command reads its arguments: `node:util` parseArgs (strict, no positionals)
 * plus `--help` / `-h`. Promises: `--help` prints the usage to stdout and exits 0; an unknown
 * flag, a missing value or a positional prints what was wrong and the usage to stderr and exits 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function readCommandLine<const O extends Options>(usage: string, options: O, args: readonly string[] = Bun.argv.slice(2)) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${usage}\n`);
    process.exit(2);
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return parsed.values as ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>['values'];
}
