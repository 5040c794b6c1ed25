/**
 * Number and time formatting for the dashboard: pure, locale-independent, never throws.
 * Outputs contain only digits, separators and fixed unit words (no input text passes through).
 */

const DASH = '—';

export function formatCount(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return DASH;
  const rounded = Math.round(value);
  const sign = rounded < 0 ? '-' : '';
  return sign + String(Math.abs(rounded)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function formatRate(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return DASH;
  return Math.abs(value) < 10 ? value.toFixed(1) : formatCount(value);
}

export function formatPercent(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return DASH;
  return `${value.toFixed(1)}%`;
}

/** 0.4 s, 12.3 s, 4 min 05 s, 2 h 07 min, 3 d 4 h. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return DASH;
  const s = Math.max(0, seconds);
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.floor(s);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${pad(whole % 60)} s`;
  if (whole < 86_400) return `${Math.floor(whole / 3600)} h ${pad(Math.floor((whole % 3600) / 60))} min`;
  return `${Math.floor(whole / 86_400)} d ${Math.floor((whole % 86_400) / 3600)} h`;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes)) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** HH:MM:SS UTC of a wall-clock ms. */
export function formatClock(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return DASH;
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
