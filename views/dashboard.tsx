/**
 * The operator dashboard: the full page and each tile as a partial. Props in, markup out.
 *
 * Every tile is a <section> that re-fetches itself (`hx-get` its own partial, `hx-trigger="every
 * 2s"`, `hx-swap="outerHTML"`), so the page is complete without JavaScript and live with it.
 * Text that can come from the network or the environment (relay URL, error messages, reason and
 * collection names, the backfill's host names and their failure reasons) is only ever rendered
 * through `safe`, which escapes it; numbers go through the formatters in format.ts.
 */
import { Html } from '@elysiajs/html';
import type { HistorySample } from '../src/api/metrics/history.ts';
import type { BackfillMetrics, DatabaseMetrics, EventProcessorMetrics, FirehoseMetrics } from '../src/api/metrics/metrics-service.ts';
import type { RecentError } from '../src/lib/recent-errors.ts';
import { formatBytes, formatClock, formatCount, formatDuration, formatPercent, formatRate } from './format.ts';
import { Sparkline } from './sparkline.tsx';

export interface DashboardView {
  readonly eventProcessor: EventProcessorMetrics;
  readonly database: DatabaseMetrics;
  readonly firehose: FirehoseMetrics;
  /** `enabled: false` when this process runs no backfill. */
  readonly backfill: BackfillMetrics;
  /** Oldest first, one a second. */
  readonly history: readonly HistorySample[];
  readonly historySlots: number;
  /** Newest first. */
  readonly errors: readonly RecentError[];
  readonly now: number;
}

export const TILE_NAMES = [
  'events',
  'lag',
  'cursor',
  'user-creations',
  'pool',
  'queue',
  'rejects',
  'database',
  'backfill',
  'events-chart',
  'lag-chart',
  'errors',
] as const;
export type TileName = (typeof TILE_NAMES)[number];

export const POLL_TRIGGER = 'every 2s';

type State = 'ok' | 'warn' | 'bad' | 'idle';

const TILES: Record<TileName, (view: DashboardView) => JSX.Element> = {
  events: EventsTile,
  lag: LagTile,
  cursor: CursorTile,
  'user-creations': UserCreationsTile,
  pool: PoolTile,
  queue: QueueTile,
  rejects: RejectsTile,
  database: DatabaseTile,
  backfill: BackfillTile,
  'events-chart': EventsChartTile,
  'lag-chart': LagChartTile,
  errors: ErrorsTile,
};

export function isTileName(name: string): name is TileName {
  return (TILE_NAMES as readonly string[]).includes(name);
}

export function renderTile(name: TileName, view: DashboardView): JSX.Element {
  return TILES[name](view);
}

export function DashboardPage(view: DashboardView): JSX.Element {
  const fh = view.firehose;
  return (
    <>
      {'<!doctype html>'}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="color-scheme" content="light dark" />
          <title>Aqueduct</title>
          <link rel="icon" href="data:," />
          <style>{STYLE}</style>
          <script src="/static/htmx.js" defer></script>
        </head>
        <body>
          <header>
            <h1>Aqueduct</h1>
            <p class="relay">
              {fh.enabled ? 'relay ' : 'firehose disabled · relay '}
              <code safe>{fh.relayUrl}</code>
            </p>
          </header>
          <main class="grid">{TILE_NAMES.map((name) => TILES[name](view))}</main>
          <footer>
            <p>
              Rendered {formatClock(view.now)}; tiles refresh every 2 s when JavaScript is on.{' '}
              <a href="/api/metrics/event-processor">event-processor</a> · <a href="/api/metrics/database">database</a> ·{' '}
              <a href="/api/metrics/firehose">firehose</a> · <a href="/api/metrics/backfill">backfill</a> · <a href="/metrics">prometheus</a> · <a href="/ready">ready</a>
            </p>
          </footer>
        </body>
      </html>
    </>
  );
}

interface TileProps {
  readonly name: TileName;
  readonly title: string;
  readonly state: State;
  readonly wide?: boolean;
  /** A whole row. */
  readonly full?: boolean;
  readonly children?: JSX.Element | JSX.Element[];
}

function Tile(props: TileProps): JSX.Element {
  return (
    <section
      id={`tile-${props.name}`}
      class={['tile', props.wide ? 'wide' : '', props.full ? 'full' : '']}
      data-state={props.state}
      hx-get={`/dashboard/tiles/${props.name}`}
      hx-trigger={POLL_TRIGGER}
      hx-swap="outerHTML"
    >
      <h2>{props.title}</h2>
      {props.children}
    </section>
  );
}

function Value(props: { readonly value: string; readonly unit?: string }): JSX.Element {
  return (
    <p class="value">
      {props.value}
      {props.unit ? <span class="unit">{props.unit}</span> : ''}
    </p>
  );
}

function EventsTile(view: DashboardView): JSX.Element {
  const ep = view.eventProcessor;
  return (
    <Tile name="events" title="Events / s" state={ep.firehoseEnabled ? 'ok' : 'idle'}>
      <Value value={formatRate(ep.eventsPerSecond.last1s)} unit="/s" />
      <p class="sub">
        1 min {formatRate(ep.eventsPerSecond.last1m)} · 5 min {formatRate(ep.eventsPerSecond.last5m)}
      </p>
      <p class="sub">
        <span class="events-committed">{formatCount(ep.eventsCommitted)}</span> committed
      </p>
    </Tile>
  );
}

function LagTile(view: DashboardView): JSX.Element {
  const lag = view.firehose.lagSeconds;
  const state: State = lag === null ? 'idle' : lag > 600 ? 'bad' : lag > 60 ? 'warn' : 'ok';
  return (
    <Tile name="lag" title="Lag" state={state}>
      <Value value={formatDuration(lag)} />
      <p class="sub">last event {formatClock(view.firehose.cursorTime === null ? null : Date.parse(view.firehose.cursorTime))}</p>
    </Tile>
  );
}

function CursorTile(view: DashboardView): JSX.Element {
  const fh = view.firehose;
  const state: State = !fh.enabled ? 'idle' : fh.connected ? 'ok' : 'bad';
  return (
    <Tile name="cursor" title="Cursor" state={state}>
      <Value value={formatCount(fh.cursor)} />
      <p class="sub">
        received {formatCount(fh.lastReceivedSeq)} · {fh.enabled ? (fh.connected ? 'connected' : 'disconnected') : 'disabled'}
      </p>
      <p class="sub">reconnects {formatCount(fh.reconnects)}</p>
    </Tile>
  );
}

function UserCreationsTile(view: DashboardView): JSX.Element {
  const ep = view.eventProcessor;
  const state: State = ep.userCreationUtilization >= 90 ? 'warn' : 'ok';
  return (
    <Tile name="user-creations" title="User creations" state={state}>
      <Value value={formatPercent(ep.userCreationUtilization)} />
      <p class="sub">
        {formatCount(ep.activeUserCreations)} / {formatCount(ep.maxConcurrentUserCreations)} active
      </p>
      <p class="sub">{formatCount(ep.pendingUserCreationOpsCount)} pending</p>
    </Tile>
  );
}

function PoolTile(view: DashboardView): JSX.Element {
  const db = view.database;
  const state: State = db.utilization >= 90 ? 'warn' : 'ok';
  return (
    <Tile name="pool" title="DB pool" state={state}>
      <Value value={formatPercent(db.utilization)} />
      <p class="sub">
        {formatCount(db.active)} / {formatCount(db.size)} active · {formatCount(db.waiting)} waiting
      </p>
      <p class="sub">
        {formatCount(db.connectionErrors)} connection errors · {formatCount(db.timeouts)} timeouts
      </p>
    </Tile>
  );
}

function QueueTile(view: DashboardView): JSX.Element {
  const ep = view.eventProcessor;
  const fill = ep.queueLimit > 0 ? ep.queueDepth / ep.queueLimit : 0;
  const state: State = !ep.firehoseEnabled ? 'idle' : fill >= 0.9 ? 'bad' : fill >= 0.5 ? 'warn' : 'ok';
  return (
    <Tile name="queue" title="Queue depth" state={state}>
      <Value value={formatCount(ep.queueDepth)} />
      <p class="sub">limit {formatCount(ep.queueLimit)}</p>
      <p class="sub">
        {formatCount(ep.eventsInFlight)} / {formatCount(ep.maxConcurrentOps)} ops in flight
      </p>
    </Tile>
  );
}

function RejectsTile(view: DashboardView): JSX.Element {
  const r = view.eventProcessor.rejected;
  return (
    <Tile name="rejects" title="Rejected" state={r.badSignature > 0 ? 'warn' : 'ok'}>
      <Value value={formatCount(r.total)} />
      <dl class="pairs">
        <dt>bad frame</dt>
        <dd>{formatCount(r.badFrame)}</dd>
        <dt>bad signature</dt>
        <dd>{formatCount(r.badSignature)}</dd>
        <dt>invalid record</dt>
        <dd>{formatCount(r.invalidRecord)}</dd>
        <dt>unknown collection</dt>
        <dd>{formatCount(r.unknownCollection)}</dd>
        <dt>other</dt>
        <dd>{formatCount(r.other)}</dd>
      </dl>
    </Tile>
  );
}

function DatabaseTile(view: DashboardView): JSX.Element {
  const db = view.database;
  const records = Object.entries(db.records).filter(([name]) => name !== 'actors');
  const total = records.reduce((sum, [, count]) => sum + count, 0);
  return (
    <Tile name="database" title="Database" state="ok">
      <Value value={formatBytes(db.databaseSizeBytes)} />
      <p class="sub">
        {formatCount(db.records.actors ?? null)} actors · {formatCount(total)} records
      </p>
    </Tile>
  );
}

const TROUBLED_HOSTS_SHOWN = 3;

function BackfillTile(view: DashboardView): JSX.Element {
  const bf = view.backfill;
  if (!bf.enabled) {
    return (
      <Tile name="backfill" title="Backfill" state="idle" wide>
        <p class="sub">not running in this process</p>
      </Tile>
    );
  }
  const paused = bf.troubledHosts.filter((host) => host.pausedForMs > 0).length;
  const state: State = bf.repos.failed > 0 || paused > 0 ? 'warn' : 'ok';
  const troubled = bf.troubledHosts.slice(0, TROUBLED_HOSTS_SHOWN);
  return (
    <Tile name="backfill" title="Backfill" state={state} wide>
      <Value value={formatCount(bf.repos.done)} unit="repos done" />
      <p class="sub">
        <span class="backfill-queued">{formatCount(bf.repos.queued)}</span> queued · <span class="backfill-failed">{formatCount(bf.repos.failed)}</span> failed ·{' '}
        {formatCount(bf.repos.inactive)} inactive
      </p>
      <p class="sub">
        {formatRate(bf.recordsPerSecond)} records/s · ETA <span class="backfill-eta">{formatDuration(bf.etaSeconds)}</span>
      </p>
      <p class="sub">
        {formatCount(bf.activeImports)} importing · {formatCount(bf.hostsListing)} hosts listing
      </p>
      {troubled.length === 0 ? (
        ''
      ) : (
        <ul class="troubled">
          {troubled.map((host) => (
            <li>
              <code class="host" safe>
                {host.host}
              </code>{' '}
              {host.reason === null ? '' : <span class="reason" safe>{host.reason}</span>}
              {host.reason === null ? '' : ' '}
              <span class="standing">
                {host.pausedForMs > 0
                  ? `paused ${formatDuration(host.pausedForMs / 1000)}`
                  : `${formatCount(host.failuresInRow)} ${host.failuresInRow === 1 ? 'failure' : 'failures'} in a row`}
              </span>
            </li>
          ))}
        </ul>
      )}
    </Tile>
  );
}

function EventsChartTile(view: DashboardView): JSX.Element {
  const values = view.history.map((sample) => sample.eventsPerSecond);
  const max = Math.max(0, ...values);
  return (
    <Tile name="events-chart" title="Events / s, last 5 min" state="ok" wide>
      <Sparkline values={values} slots={view.historySlots} label="events per second over the last 5 minutes" />
      <p class="sub">
        now {formatRate(values[values.length - 1] ?? null)} · max {formatRate(max)}
      </p>
    </Tile>
  );
}

function LagChartTile(view: DashboardView): JSX.Element {
  const values = view.history.map((sample) => sample.lagSeconds);
  const known = values.filter((v): v is number => v !== null);
  return (
    <Tile name="lag-chart" title="Lag, last 5 min" state="ok" wide>
      <Sparkline values={values} slots={view.historySlots} label="lag in seconds over the last 5 minutes" />
      <p class="sub">
        now {formatDuration(values[values.length - 1] ?? null)} · max {formatDuration(known.length ? Math.max(...known) : null)}
      </p>
    </Tile>
  );
}

const ERRORS_SHOWN = 8;

function ErrorsTile(view: DashboardView): JSX.Element {
  const errors = view.errors.slice(0, ERRORS_SHOWN);
  return (
    <Tile name="errors" title="Last errors" state={errors.some((e) => e.level === 'error') ? 'bad' : errors.length ? 'warn' : 'ok'} wide full>
      {errors.length === 0 ? (
        <p class="sub">none</p>
      ) : (
        <ol class="errors">
          {errors.map((entry) => (
            <li class={entry.level}>
              <time datetime={new Date(entry.lastAt).toISOString()}>{formatClock(entry.lastAt)}</time>{' '}
              <strong>{entry.level}</strong> <span class="message" safe>{entry.message}</span>
              {entry.count > 1 ? <span class="count"> ×{formatCount(entry.count)}</span> : ''}
              {entry.detail ? (
                <span class="detail" safe>
                  {entry.detail}
                </span>
              ) : (
                ''
              )}
            </li>
          ))}
        </ol>
      )}
    </Tile>
  );
}

const STYLE = `
:root { --bg: #f6f7f9; --card: #fff; --ink: #1b1f24; --muted: #5b6470; --line: #2563eb; --fill: rgba(37,99,235,.12);
  --ok: #16a34a; --warn: #d97706; --bad: #dc2626; --idle: #9ca3af; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
@media (prefers-color-scheme: dark) { :root { --bg: #0f1216; --card: #181c22; --ink: #e6e9ee; --muted: #9aa3ae;
  --line: #60a5fa; --fill: rgba(96,165,250,.15); } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); }
header, footer { padding: .75rem 1rem; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem 1rem; }
h1 { margin: 0; font-size: 1.25rem; }
.relay { margin: 0; color: var(--muted); overflow-wrap: anywhere; }
footer { color: var(--muted); font-size: .85rem; }
footer a { color: inherit; }
.grid { display: grid; gap: .75rem; padding: 0 1rem; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); }
.tile { background: var(--card); border-radius: .5rem; padding: .75rem .9rem; border-top: 4px solid var(--ok);
  box-shadow: 0 1px 2px rgba(0,0,0,.08); min-width: 0; }
.tile.wide { grid-column: span 2; }
.tile.full { grid-column: 1 / -1; }
.tile[data-state="warn"] { border-top-color: var(--warn); }
.tile[data-state="bad"] { border-top-color: var(--bad); }
.tile[data-state="idle"] { border-top-color: var(--idle); }
.tile h2 { margin: 0 0 .25rem; font-size: .8rem; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.value { margin: 0; font-size: 1.9rem; font-weight: 650; font-variant-numeric: tabular-nums; line-height: 1.2; }
.unit { font-size: 1rem; font-weight: 500; color: var(--muted); margin-left: .15rem; }
.sub { margin: .15rem 0 0; font-size: .85rem; color: var(--muted); font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.pairs { display: grid; grid-template-columns: 1fr auto; gap: 0 .5rem; margin: .25rem 0 0; font-size: .8rem; color: var(--muted); }
.pairs dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.spark { display: block; width: 100%; height: 4rem; margin: .25rem 0; }
.spark-line { fill: none; stroke: var(--line); stroke-width: 2; }
.spark-area { fill: var(--fill); stroke: none; }
.errors { list-style: none; margin: 0; padding: 0; font-size: .8rem; max-height: 14rem; overflow-y: auto; }
.errors li { padding: .25rem 0; border-bottom: 1px solid rgba(127,127,127,.2); overflow-wrap: anywhere; }
.errors li.error strong { color: var(--bad); }
.errors li.warn strong { color: var(--warn); }
.errors time, .errors .detail, .errors .count { color: var(--muted); }
.troubled { list-style: none; margin: .25rem 0 0; padding: 0; font-size: .8rem; }
.troubled li { padding: .15rem 0; border-top: 1px solid rgba(127,127,127,.2); overflow-wrap: anywhere; }
.troubled .reason { color: var(--warn); }
.troubled .standing { color: var(--muted); }
.errors .detail { display: block; font-family: ui-monospace, monospace; font-size: .75rem; }
@media (max-width: 30rem) { .grid { grid-template-columns: repeat(2, minmax(0, 1fr)); padding: 0 .5rem; gap: .5rem; }
  .tile.wide { grid-column: 1 / -1; } .value { font-size: 1.5rem; } }
`;
