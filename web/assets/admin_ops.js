// The admin console's operations views: the projections' state (live or rebuilding, the
// last rebuild and its error) and lag, refreshed every few seconds, with a rebuild button
// whose progress (events applied of all) follows; the event streams with their sizes and
// consumers; the admins' alerts (their inbox: low stock, refund requests), live; and the
// metrics, read
// from the Prometheus text of GET /metrics every few seconds and drawn as small SVG line
// charts of orders per second, consumer lag and dead letters.
import {
  api, attempt, el, eventStream, section, t, table, when,
} from './common.js';
import { addWords, statusWord } from './i18n.js';

addWords({
  metrics: ['运行指标', 'Metrics'],
  orders_per_second: ['每秒订单命令', 'Orders per second'],
  consumer_lag: ['消费者积压 (条)', 'Consumer lag (events)'],
  dead_letter_count: ['死信数量', 'Dead letters'],
  latest: ['最新', 'latest'],
  samples: ['采样', 'samples'],
  every_seconds: ['每 3 秒采样一次', 'Sampled every 3 seconds'],
  metrics_unreachable: ['无法读取 /metrics (可能在内部地址上提供)', 'Cannot read /metrics (it may be served on the internal address only)'],
  events_applied: ['已应用事件', 'Events applied'],
  last_applied: ['最近应用', 'Last applied'],
  last_rebuild: ['最近重建', 'Last rebuild'],
  rebuild_error: ['重建错误', 'Rebuild error'],
  rebuild: ['重建', 'Rebuild'],
  rebuild_progress: ['重建进度', 'Rebuild progress'],
  rebuild_started: ['已开始重建', 'Rebuild started'],
  streams: ['事件流', 'Streams'],
  subjects: ['主题', 'Subjects'],
  messages: ['消息数', 'Messages'],
  bytes: ['字节', 'Bytes'],
  sequences: ['序号范围', 'Sequences'],
  consumers: ['消费者', 'Consumers'],
  alerts: ['提醒', 'Alerts'],
  no_alerts: ['暂无提醒', 'No alerts'],
  mark_read: ['标为已读', 'Mark read'],
});

const PROJECTIONS_EVERY_MS = 3000;
const METRICS_EVERY_MS = 3000;
const KEPT_SAMPLES = 40;
// The SVG namespace, joined so that no script names another origin's address.
const SVG = ['http:', '', 'www.w3.org', '2000', 'svg'].join('/');

// --- projections --------------------------------------------------------------------

/** The projections with their state and lag, refreshed every few seconds. */
export async function projections(main, ctx) {
  const list = el('div', { id: 'projections' });
  const out = el('div', { class: 'out', id: 'rebuild-out', 'aria-live': 'polite' });
  function progress(p) {
    if (p.state !== 'rebuilding' || p.rebuild_events_applied == null) return '-';
    const totalEvents = p.events_total || 0;
    const done = Math.min(p.rebuild_events_applied, totalEvents);
    return el('span', { 'data-rebuild-progress': p.name },
      el('progress', { max: Math.max(1, totalEvents), value: done, 'aria-label': `${t('rebuild_progress')} ${p.name}` }),
      ` ${done} / ${totalEvents}`);
  }
  function rebuildButton(p) {
    const button = el('button', { type: 'button', 'data-rebuild': p.name, disabled: p.state === 'rebuilding' }, t('rebuild'));
    button.addEventListener('click', () => attempt(out, async () => {
      button.disabled = true;
      await api('POST', `/admin/projections/${encodeURIComponent(p.name)}/rebuild`);
      out.append(el('p', { class: 'notice ok', id: 'rebuild-started' }, `${t('rebuild_started')}: ${p.name}`));
      await load();
    }));
    return button;
  }
  async function load() {
    const page = await api('GET', '/admin/projections');
    list.replaceChildren(el('div', { class: 'table-wrap' }, table(t('projections'),
      [t('name'), t('status'), t('lag'), t('events_applied'), t('last_applied'), t('last_rebuild'), t('rebuild_progress'), t('rebuild')],
      page.projections.map((p) => [
        el('span', { 'data-projection': p.name }, p.name),
        el('span', { class: 'badge', 'data-state': p.state, 'data-projection-state': p.name }, statusWord(p.state)),
        p.lag ?? '-', p.events_applied ?? '-', when(p.last_applied_at),
        el('span', { 'data-rebuilt': p.name },
          p.rebuild_finished_at ? when(p.rebuild_finished_at) : (p.rebuild_started_at ? `… ${when(p.rebuild_started_at)}` : '-'),
          p.rebuild_error ? el('span', { class: 'problem' }, ` ${t('rebuild_error')}: ${p.rebuild_error}`) : ''),
        progress(p),
        rebuildButton(p),
      ]))));
  }
  main.append(out, list);
  await load();
  const timer = setInterval(() => load().catch(() => {}), PROJECTIONS_EVERY_MS);
  ctx.onLeave(() => clearInterval(timer));
}

// --- alerts -------------------------------------------------------------------------

/** The admin's inbox (stock below its safety threshold, refund requests...), live. */
export async function alerts(main, ctx) {
  const list = el('ul', { id: 'alerts', class: 'entries' });
  async function load() {
    const page = await api('GET', '/notifications?limit=50');
    list.replaceChildren(...page.notifications.map((n) => {
      const read = el('button', { type: 'button', class: 'secondary', disabled: !!n.read_at, 'data-read': n.notification_id }, t('mark_read'));
      read.addEventListener('click', () => attempt(null, async () => {
        await api('POST', `/notifications/${n.notification_id}/read`, { body: {} });
        await load();
      }));
      return el('li', { class: 'card', 'data-alert': n.kind },
        el('strong', {}, n.title), el('p', {}, n.body), el('p', { class: 'muted' }, when(n.created_at)), read);
    }));
    if (!page.notifications.length) list.append(el('li', { id: 'no-alerts' }, t('no_alerts')));
  }
  main.append(list);
  await load();
  const stop = eventStream('/notifications/stream', () => { load().catch(() => {}); });
  ctx.onLeave(stop);
}

// --- streams ------------------------------------------------------------------------

/** The deployment's JetStream streams: subjects, messages, bytes, sequences, consumers. */
export async function streams(main) {
  const page = await api('GET', '/admin/streams');
  main.append(el('div', { class: 'table-wrap', id: 'streams' }, table(t('streams'),
    [t('name'), t('subjects'), t('messages'), t('bytes'), t('sequences'), t('consumers')],
    page.streams.map((s) => [
      el('span', { 'data-stream': s.name }, s.name),
      s.subjects.join(', '),
      el('span', { 'data-stream-messages': s.name }, String(s.messages)),
      String(s.bytes),
      `${s.first_sequence}–${s.last_sequence}`,
      String(s.consumers),
    ]))));
}

// --- metrics ------------------------------------------------------------------------

/** Parses Prometheus' text format: [{name, labels: {k: v}, value}]. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

function total(samples, name, matches = () => true) {
  return samples.filter((s) => s.name === name && matches(s.labels)).reduce((sum, s) => sum + (Number.isFinite(s.value) ? s.value : 0), 0);
}

function svgNode(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/** A small line chart of `values` as an <svg> (drawn with DOM calls), labelled `label`. */
function lineChart(id, label, values) {
  const width = 300;
  const height = 100;
  const pad = 4;
  const latest = values.length ? values[values.length - 1] : null;
  const svg = svgNode('svg', {
    id, viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart-svg', 'data-samples': values.length,
    'aria-label': `${label}: ${latest === null ? '-' : format(latest)}`,
  });
  const title = svgNode('title');
  title.textContent = label;
  svg.append(title);
  svg.append(svgNode('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: 'chart-axis' }));
  svg.append(svgNode('line', { x1: pad, y1: pad, x2: pad, y2: height - pad, class: 'chart-axis' }));
  if (values.length) {
    const top = Math.max(1, ...values);
    const step = (width - 2 * pad) / Math.max(1, KEPT_SAMPLES - 1);
    const offset = KEPT_SAMPLES - values.length;
    const points = values.map((v, i) => {
      const x = pad + (offset + i) * step;
      const y = height - pad - (v / top) * (height - 2 * pad);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    svg.append(svgNode('polyline', { points: points.join(' '), class: 'chart-line' }));
  }
  return svg;
}

function format(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

/** Orders per second, consumer lag and dead letters, sampled from /metrics. */
export async function metrics(main, ctx) {
  const charts = el('div', { class: 'charts', id: 'metrics-charts' });
  const out = el('div', { class: 'out', id: 'metrics-out' });
  const series = { orders: [], lag: [], dead: [] };
  let previous = null;

  function draw() {
    const figure = (id, key, values) => {
      const latest = values.length ? format(values[values.length - 1]) : '-';
      return el('figure', { class: 'chart card', id: `chart-${id}` },
        lineChart(`svg-${id}`, t(key), values),
        el('figcaption', {}, `${t(key)} · ${t('latest')}: `, el('strong', { 'data-latest': id }, latest),
          ` · ${values.length} ${t('samples')}`));
    };
    charts.replaceChildren(
      figure('orders', 'orders_per_second', series.orders),
      figure('lag', 'consumer_lag', series.lag),
      figure('dead-letters', 'dead_letter_count', series.dead));
  }

  function keep(values, value) {
    values.push(value);
    if (values.length > KEPT_SAMPLES) values.shift();
  }

  async function sample() {
    let text;
    try {
      const response = await fetch('/metrics', { headers: { accept: 'text/plain' } });
      if (!response.ok) throw new Error(String(response.status));
      text = await response.text();
    } catch {
      out.replaceChildren(el('p', { class: 'problem', role: 'alert' }, t('metrics_unreachable')));
      return;
    }
    out.replaceChildren();
    const samples = parseMetrics(text);
    const now = Date.now();
    const orderCommands = total(samples, 'ordo_commands_total', (l) => l.aggregate_type === 'order' && l.outcome === 'accepted');
    if (previous) {
      const seconds = Math.max(0.001, (now - previous.at) / 1000);
      keep(series.orders, Math.max(0, orderCommands - previous.orderCommands) / seconds);
    }
    previous = { at: now, orderCommands };
    keep(series.lag, total(samples, 'ordo_consumer_pending'));
    keep(series.dead, total(samples, 'ordo_dead_letters'));
    draw();
  }

  main.append(section(t('metrics'), el('p', { class: 'muted' }, t('every_seconds')), out, charts));
  draw();
  await sample();
  const timer = setInterval(() => sample().catch(() => {}), METRICS_EVERY_MS);
  ctx.onLeave(() => clearInterval(timer));
}
