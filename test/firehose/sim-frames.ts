// sim-frames: real firehose frames from the simulator's network, for decoder tests and benchmarks.
//
// The frames are exactly what the simulated relay sends (signed commits, CAR slices with real MST
// nodes, the realistic record mix), made in-process without a socket. Deterministic for a seed.
import { Network } from '../../src/sim/network.ts';
import { FAULT_KINDS, type FaultRates } from '../../src/sim/workload.ts';

export interface SimulatorFramesOptions {
  readonly seed?: string;
  readonly accounts?: number;
  readonly commits: number;
  /** rates of the simulator's fault kinds; none by default */
  readonly faults?: Partial<FaultRates>;
}

/** The binary frames of `commits` simulator steps, in order (one commit each, plus planned extras). */
export const simulatorFrames = (options: SimulatorFramesOptions): Uint8Array[] => simulatorRun(options).frames;

/** The same frames, with the network that made them (its directory knows every account's key). */
export const simulatorRun = (options: SimulatorFramesOptions): { network: Network; frames: Uint8Array[] } => {
  const faults = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, options.faults?.[kind] ?? 0])) as FaultRates;
  const network = new Network({
    seed: options.seed ?? 'decode',
    accounts: options.accounts ?? 500,
    newAccountShare: 0.1,
    faults,
    identityShare: 0,
    accountShare: 0,
    syncShare: 0,
    retain: Number.MAX_SAFE_INTEGER,
    epochMs: Date.UTC(2025, 0, 1),
    groundTruth: false,
    keyForms: {},
  });
  for (let i = 0; i < options.commits; i++) network.step();
  const frames: Uint8Array[] = [];
  for (let position = network.log.start; position < network.log.end; position++) {
    const frame = network.log.at(position);
    if (frame !== undefined) frames.push(frame);
  }
  return { network, frames };
};
