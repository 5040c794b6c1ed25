/**
 * A server-rendered SVG sparkline: values in, an inline <svg> out, no script.
 *
 * The x axis is the sample window (`slots` samples, newest at the right edge) so the line does
 * not stretch while the window fills; the y axis runs from 0 to the largest value shown. null
 * values (nothing measured yet) break the line. The label is escaped as an attribute.
 */
import { Html } from '@elysiajs/html';

export interface SparklineProps {
  readonly values: readonly (number | null)[];
  /** Samples the full width stands for (default: values.length). */
  readonly slots?: number;
  /** Accessible description, e.g. "events per second, last 5 minutes". */
  readonly label: string;
}

const WIDTH = 300;
const HEIGHT = 60;
const PAD = 2;

export function Sparkline(props: SparklineProps): JSX.Element {
  const slots = Math.max(2, props.slots ?? props.values.length);
  const values = props.values.slice(-slots);
  const max = Math.max(0, ...values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const scale = max > 0 ? (HEIGHT - 2 * PAD) / max : 0;
  const step = WIDTH / (slots - 1);
  const offset = slots - values.length;

  const segments: string[][] = [];
  let current: string[] = [];
  values.forEach((value, index) => {
    if (value === null || !Number.isFinite(value)) {
      if (current.length) segments.push(current);
      current = [];
      return;
    }
    const x = (offset + index) * step;
    const y = HEIGHT - PAD - value * scale;
    current.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  });
  if (current.length) segments.push(current);

  return (
    <svg class="spark" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} preserveAspectRatio="none" role="img" aria-label={props.label}>
      {segments.map((points) => {
        const first = points[0]?.split(',')[0] ?? '0';
        const last = points[points.length - 1]?.split(',')[0] ?? '0';
        const area = `${first},${HEIGHT} ${points.join(' ')} ${last},${HEIGHT}`;
        return (
          <>
            <polygon class="spark-area" points={area} />
            <polyline class="spark-line" points={points.join(' ')} vector-effect="non-scaling-stroke" />
          </>
        );
      })}
    </svg>
  );
}
