/**
 * The metrics HTTP surface: `/api/metrics/event-processor`, `/api/metrics/database`,
 * `/api/metrics/firehose` (JSON, field names from docs/performance-tuning-guide.md),
 * `/api/metrics/backfill` (JSON, `BackfillMetrics`) and `/metrics` (Prometheus text). Thin
 * handlers over `MetricsService`; never cached by clients.
 */
import { Elysia } from 'elysia';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from '../prometheus.ts';
import type { MetricsService } from './metrics-service.ts';

const NO_STORE = 'no-store';

export function metricsRoutes(metrics: MetricsService) {
  return new Elysia({ name: 'metrics' })
    .get('/api/metrics/event-processor', async ({ set }) => {
      set.headers['cache-control'] = NO_STORE;
      return await metrics.eventProcessor();
    })
    .get('/api/metrics/database', async ({ set }) => {
      set.headers['cache-control'] = NO_STORE;
      return await metrics.database();
    })
    .get('/api/metrics/firehose', ({ set }) => {
      set.headers['cache-control'] = NO_STORE;
      return metrics.firehose();
    })
    .get('/api/metrics/backfill', ({ set }) => {
      set.headers['cache-control'] = NO_STORE;
      return metrics.backfill();
    })
    .get('/metrics', async () => {
      const [eventProcessor, database] = await Promise.all([metrics.eventProcessor(), metrics.database()]);
      const memory = process.memoryUsage();
      const body = renderPrometheus({ eventProcessor, database, firehose: metrics.firehose(), backfill: metrics.backfill(), memory: { rss: memory.rss, heapUsed: memory.heapUsed } });
      return new Response(body, { headers: { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': NO_STORE } });
    });
}
