// The admin console at `/admin`: catalog (categories, products with their SKUs and media)
// and stock, promotions and coupon batches, orders
// and shipments, after-sales, review moderation and booking refund requests, providers and
// service orders, shows and ticket check-in; operations: sagas (find, steps, errors,
// resume), dead letters (list, inspect, re-drive), the projections' status, lag and
// rebuild, the streams, metrics.
import {
  api, attempt, el, field, idempotencyKey, loginForm, money, poll, section, session, start, t, table, when,
} from './common.js';
import { addWords, statusWord } from './i18n.js';
import {
  aftersale, aftersales, bookingRefunds, reviews,
} from './admin_commerce.js';
import {
  alerts, metrics, projections, streams,
} from './admin_ops.js';
import {
  addSessionForm, categories, productEditor, productWithSkus,
} from './admin_catalog.js';

addWords({
  scan: ['扫码', 'Scan'],
  stop_scan: ['停止扫码', 'Stop scanning'],
  camera_view: ['摄像头画面', 'Camera view'],
  scanned: ['已读取二维码', 'QR code read'],
});

const isAdmin = (s) => !!s && s.role === 'admin';

function guard(main) {
  const current = session();
  if (!current) {
    main.append(loginForm(async () => { location.hash = '#/'; }));
    return true;
  }
  if (current.role !== 'admin') {
    main.append(el('p', { class: 'notice error' }, t('admin_only')));
    return true;
  }
  return false;
}

function form(label, fields, submitKey, onSubmit, id) {
  const out = el('div', { class: 'out' });
  const node = el('form', { class: 'card', 'aria-label': label, id }, ...fields,
    el('button', { type: 'submit', id: id ? `${id}-submit` : undefined }, t(submitKey)), out);
  node.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, () => onSubmit(out));
  });
  return node;
}

function ok(out, text, id) {
  out.replaceChildren(el('p', { class: 'notice ok', id }, text));
}

// --- home ---------------------------------------------------------------------------

async function home(main) {
  main.append(el('h1', {}, t('admin_title')));
  if (guard(main)) return;
  const [letters, projections] = await Promise.all([
    api('GET', '/admin/dead-letters').catch(() => null),
    api('GET', '/admin/projections').catch(() => null),
  ]);
  main.append(el('ul', {},
    el('li', {}, el('a', { href: '#/dead-letters' }, `${t('dead_letters')}: ${letters ? letters.dead_letters.length : '?'}`)),
    el('li', {}, el('a', { href: '#/projections' }, `${t('projections')}: ${projections ? projections.projections.length : '?'}`))));
}

// --- catalog and stock --------------------------------------------------------------

async function catalog(main) {
  main.append(el('h1', {}, t('products')));
  if (guard(main)) return;
  const sku = field(t('sku'), { id: 'new-sku', required: true, pattern: '[A-Za-z0-9_-]{1,64}' });
  const name = field(t('name'), { id: 'new-name', required: true, maxlength: 200 });
  const category = field(t('category'), { id: 'new-category', required: true, maxlength: 100 });
  const price = field(`${t('price')} (分 / minor units)`, { id: 'new-price', type: 'number', min: 1, required: true });
  const currency = field(t('currency'), { id: 'new-currency', value: 'CNY', required: true, pattern: '[A-Z]{3}' });
  const description = field(t('description'), { id: 'new-description', tag: 'textarea', maxlength: 2000 });
  const list = el('div', { id: 'catalog' });
  async function load() {
    const page = await api('GET', '/products?limit=100');
    const rows = [];
    for (const p of page.products) {
      const stock = await api('GET', `/inventory/${encodeURIComponent(p.sku)}`).catch(() => null);
      const qty = el('input', { type: 'number', min: 1, value: 10, 'aria-label': `${t('restock')} ${p.sku}` });
      const out = el('span', {});
      const restock = el('button', { type: 'button', class: 'secondary' }, t('restock'));
      restock.addEventListener('click', () => attempt(out, async () => {
        const restocked = await api('POST', `/inventory/${encodeURIComponent(p.sku)}/restock`, { body: { quantity: Number(qty.value) } });
        await poll(async () => {
          const now = await api('GET', `/inventory/${encodeURIComponent(p.sku)}`).catch(() => null);
          return now && now.on_hand >= restocked.on_hand;
        }, { ms: 300, tries: 30 });
        await load();
      }));
      const toggle = el('button', { type: 'button', class: 'secondary' }, p.on_sale ? t('delist') : t('list_again'));
      toggle.addEventListener('click', () => attempt(out, async () => {
        await api('POST', `/products/${encodeURIComponent(p.sku)}/${p.on_sale ? 'delist' : 'list'}`, { body: {} });
        await load();
      }));
      const low = stock && stock.available < 5;
      rows.push([el('a', { href: `#/products/${encodeURIComponent(p.sku)}`, 'data-edit': p.sku }, p.sku), p.name, money(p.price, p.currency), p.on_sale ? t('on_sale') : t('off_sale'),
        stock ? el('span', { class: low ? 'badge' : '' }, `${stock.available} / ${stock.on_hand}${low ? ' ⚠' : ''}`) : '',
        el('span', {}, qty, restock, ' ', toggle, out)]);
    }
    list.replaceChildren(el('div', { class: 'table-wrap' }, table(t('products'), [t('sku'), t('name'), t('price'), t('status'), t('stock'), ''], rows)));
  }
  main.append(section(t('create'), form(t('create'), [sku, name, category, price, currency, description], 'create', async (out) => {
    await api('POST', '/products', { body: {
      sku: sku.input.value.trim(), name: name.input.value.trim(), category: category.input.value.trim(),
      description: description.input.value, price: Number(price.input.value), currency: currency.input.value.trim(),
    } });
    ok(out, t('created'));
    // The list is a read model: it shows the product once it has applied it.
    await poll(() => api('GET', `/products/${encodeURIComponent(sku.input.value.trim())}`).catch(() => null), { ms: 300, tries: 30 });
    await load();
  }, 'product-form')), productWithSkus(load), list);
  await load();
}

// --- promotions and coupons ---------------------------------------------------------

async function promotions(main) {
  main.append(el('h1', {}, t('promotions')));
  if (guard(main)) return;
  const name = field(t('name'), { id: 'batch-name', required: true, maxlength: 200 });
  const kind = field(t('kind'), { id: 'batch-kind', tag: 'select', options: [['amount_off', 'amount_off'], ['percent_off', 'percent_off']] });
  const value = field(t('value'), { id: 'batch-value', type: 'number', min: 1, required: true });
  const minSpend = field(t('min_spend'), { id: 'batch-min', type: 'number', min: 0, value: 0 });
  const quota = field(t('quota'), { id: 'batch-quota', type: 'number', min: 1, value: 100 });
  const perUser = field(t('per_user_limit'), { id: 'batch-per-user', type: 'number', min: 1, value: 1 });
  const currency = field(t('currency'), { id: 'batch-currency', value: 'CNY', pattern: '[A-Z]{3}' });
  const until = field(t('valid_until'), { id: 'batch-until', type: 'date', required: true });
  const lists = el('div', {});
  async function load() {
    const [batches, promos] = await Promise.all([api('GET', '/admin/coupon-batches?limit=100'), api('GET', '/admin/promotions?limit=100')]);
    lists.replaceChildren(
      el('div', { class: 'table-wrap' }, table(t('coupon_batches'), ['ID', t('name'), t('value'), t('quota')],
        batches.batches.map((b) => [el('code', {}, b.batch_id), b.name, b.kind === 'percent_off' ? `${b.value}%` : money(b.value, b.currency), `${b.claimed ?? ''} / ${b.quota}`]), { id: 'batches' })),
      el('div', { class: 'table-wrap' }, table(t('promotions'), [t('name'), t('kind'), t('status')],
        promos.promotions.map((p) => [p.name, p.kind, p.status || '']))));
  }
  main.append(section(t('coupon_batches'), form(t('coupon_batches'), [name, kind, value, minSpend, quota, perUser, currency, until], 'create', async (out) => {
    const created = await api('POST', '/admin/coupon-batches', {
      body: {
        name: name.input.value.trim(), kind: kind.input.value, value: Number(value.input.value), min_spend: Number(minSpend.input.value || 0),
        quota: Number(quota.input.value), per_user_limit: Number(perUser.input.value), currency: currency.input.value.trim(),
        valid_from: new Date().toISOString(), valid_until: new Date(`${until.input.value}T23:59:59Z`).toISOString(),
      },
      headers: { 'idempotency-key': idempotencyKey() },
    });
    ok(out, `${t('created')}: ${created.batch_id}`);
    await poll(async () => (await api('GET', '/admin/coupon-batches?limit=100')).batches.some((b) => b.batch_id === created.batch_id), { ms: 300, tries: 30 });
    await load();
  }, 'batch-form')), lists);
  await load();
}

// --- orders and shipments -----------------------------------------------------------

async function orders(main, ctx, id) {
  main.append(el('h1', {}, t('orders')));
  if (guard(main)) return;
  const orderId = field(t('order_id'), { id: 'find-order', required: true, value: id || '' });
  const box = el('div', { id: 'order' });
  async function show(orderIdValue) {
    const o = await api('GET', `/orders/${orderIdValue}`);
    // The order's shipments are a read model: a command shows once it has applied it.
    async function applied(shipmentId, version) {
      await poll(async () => {
        const now = await api('GET', `/orders/${orderIdValue}`).catch(() => null);
        const shipment = now && (now.shipments || []).find((x) => x.shipment_id === shipmentId);
        return shipment && shipment.version >= version;
      }, { ms: 300, tries: 40 });
      await show(orderIdValue);
    }
    const shipments = (o.shipments || []).map((s) => {
      const out = el('div', { class: 'out' });
      const carrier = field(t('carrier'), { id: `carrier-${s.shipment_id}`, maxlength: 32, value: s.carrier || 'sandbox', pattern: '[a-z0-9_-]{1,32}' });
      const tracking = field(t('tracking_number'), { id: `tracking-${s.shipment_id}`, maxlength: 64, value: s.tracking_no || '', pattern: '[A-Za-z0-9-]{1,64}' });
      const pick = el('button', { type: 'button', class: 'secondary', 'data-pick': s.shipment_id, disabled: s.status !== 'created' }, t('pick'));
      pick.addEventListener('click', () => attempt(out, async () => {
        const written = await api('POST', `/admin/shipments/${s.shipment_id}/pick`, { body: {} });
        await applied(s.shipment_id, written.version);
      }));
      const ship = el('button', { type: 'button', 'data-ship': s.shipment_id, disabled: s.status !== 'picked' }, t('ship'));
      ship.addEventListener('click', () => attempt(out, async () => {
        const written = await api('POST', `/admin/shipments/${s.shipment_id}/ship`, { body: { carrier: carrier.input.value.trim(), tracking_no: tracking.input.value.trim() } });
        await applied(s.shipment_id, written.version);
      }));
      const tracked = s.tracking_no
        ? el('div', { id: `shipment-tracking-${s.shipment_id}` },
          el('p', {}, `${t('carrier')}: ${s.carrier} · ${t('tracking_number')}: `, el('strong', {}, s.tracking_no)),
          (s.tracking || []).length
            ? el('ol', { 'aria-label': t('tracking') }, ...s.tracking.map((step) => el('li', {}, `${when(step.at)} ${statusWord(step.status)}`)))
            : '')
        : '';
      return section(`${t('shipment')} ${s.shipment_id.slice(0, 8)}: ${statusWord(s.status)}`,
        el('p', {}, `${t('status')}: `, el('strong', { 'data-shipment-status': s.shipment_id, 'data-status': s.status }, statusWord(s.status))),
        tracked, el('div', { class: 'row' }, carrier, tracking, pick, ship), out);
    });
    box.replaceChildren(el('p', {}, `${t('status')}: `, el('strong', { id: 'admin-order-status' }, statusWord(o.status)), ` · ${money(o.total, o.currency)}`),
      el('div', { class: 'table-wrap' }, table(t('order'), [t('sku'), t('quantity')], o.items.map((l) => [l.sku, l.quantity]))), ...shipments,
      el('p', {}, el('a', { href: `#/sagas/${o.order_id}` }, t('sagas'))));
  }
  main.append(form(t('find'), [orderId], 'find', async () => show(orderId.input.value.trim()), 'order-form'), box);
  if (id) await show(id);
}

// --- providers and service orders ---------------------------------------------------

async function providers(main) {
  main.append(el('h1', {}, t('providers')));
  if (guard(main)) return;
  const list = el('div', { id: 'providers' });
  async function load() {
    const page = await api('GET', '/admin/providers?status=pending_verification&limit=100');
    list.replaceChildren(el('div', { class: 'table-wrap' }, table(t('providers'), ['ID', t('skills'), t('areas'), t('certifications'), ''],
      page.providers.map((p) => {
        const out = el('span', {});
        const verify = el('button', { type: 'button', 'data-verify': p.provider_id }, t('verify'));
        verify.addEventListener('click', () => attempt(out, async () => { await api('POST', `/admin/providers/${p.provider_id}/verify`, { body: {} }); await load(); }));
        const reject = el('button', { type: 'button', class: 'secondary' }, t('reject'));
        reject.addEventListener('click', () => attempt(out, async () => { await api('POST', `/admin/providers/${p.provider_id}/reject`, { body: { reason: 'documents unclear' } }); await load(); }));
        return [el('code', {}, p.provider_id.slice(0, 8)), p.skills.join(', '), p.service_areas.join(', '), p.certifications, el('span', {}, verify, ' ', reject, out)];
      }))));
  }
  await load();
  // The service orders waiting for an admin's review, each approved or rejected in place.
  const pending = el('div', { id: 'pending-service-orders' });
  const soOut = el('div', { class: 'out', id: 'so-out', 'aria-live': 'polite' });
  async function loadOrders() {
    const page = await api('GET', '/admin/service-orders?status=pending_review&limit=100');
    pending.replaceChildren(el('div', { class: 'table-wrap' }, table(t('service_orders'), ['ID', t('title'), t('price'), t('reason'), ''],
      page.service_orders.map((o) => {
        const reason = el('input', { type: 'text', maxlength: 500, id: `so-reason-${o.order_id}`, 'aria-label': `${t('reason')} ${o.order_id.slice(0, 8)}` });
        const approve = el('button', { type: 'button', 'data-approve-order': o.order_id }, t('approve'));
        approve.addEventListener('click', () => attempt(soOut, async () => {
          await api('POST', `/admin/service-orders/${o.order_id}/approve`, { body: {} });
          ok(soOut, t('done'), 'so-decided');
          await poll(async () => !(await api('GET', '/admin/service-orders?status=pending_review&limit=100')).service_orders.some((x) => x.order_id === o.order_id), { ms: 300, tries: 40 });
          await loadOrders();
        }));
        const reject = el('button', { type: 'button', class: 'secondary', 'data-reject-order': o.order_id }, t('reject'));
        reject.addEventListener('click', () => attempt(soOut, async () => {
          await api('POST', `/admin/service-orders/${o.order_id}/reject`, { body: { reason: reason.value.trim() || 'not allowed' } });
          ok(soOut, t('done'), 'so-decided');
          await poll(async () => !(await api('GET', '/admin/service-orders?status=pending_review&limit=100')).service_orders.some((x) => x.order_id === o.order_id), { ms: 300, tries: 40 });
          await loadOrders();
        }));
        return [el('code', { 'data-service-order': o.order_id }, o.order_id.slice(0, 8)), `${o.title} (${o.service_type}, ${o.location})`,
          money(o.price, o.currency), reason, el('span', {}, approve, ' ', reject)];
      }))));
    if (!page.service_orders.length) pending.append(el('p', { id: 'no-pending-orders' }, '-'));
  }
  await loadOrders();
  main.append(list, section(t('service_orders'), pending, soOut));
}

// --- shows and check-in -------------------------------------------------------------

async function shows(main) {
  main.append(el('h1', {}, t('shows')));
  if (guard(main)) return;
  const title = field(t('title'), { id: 'show-title', required: true, maxlength: 200 });
  const category = field(t('category'), { id: 'show-category', required: true, maxlength: 100 });
  const city = field(t('city'), { id: 'show-city', required: true, maxlength: 100 });
  const venue = field(t('venue'), { id: 'show-venue', required: true, maxlength: 200 });
  const startsAt = field(t('sessions'), { id: 'show-starts', type: 'datetime-local', required: true });
  const area = field(t('seat_area'), { id: 'show-area', required: true, value: 'A', pattern: '[A-Za-z0-9_-]{1,64}' });
  const price = field(t('price'), { id: 'show-price', type: 'number', min: 0, required: true });
  const capacity = field(t('quota'), { id: 'show-capacity', type: 'number', min: 1, required: true, value: 100 });
  main.append(form(t('create'), [title, category, city, venue, startsAt, area, price, capacity], 'create', async (out) => {
    const created = await api('POST', '/shows', { body: {
      title: title.input.value.trim(), category: category.input.value.trim(), city: city.input.value.trim(), venue: venue.input.value.trim(), description: '',
      sessions: [{ starts_at: new Date(startsAt.input.value).toISOString(), seat_areas: [{ area_id: area.input.value.trim(), name: area.input.value.trim(), price: Number(price.input.value), currency: 'CNY', capacity: Number(capacity.input.value) }] }],
    } });
    ok(out, `${t('created')}: ${created.show_id}`);
  }, 'show-form'), await addSessionForm());
}

async function checkIn(main, ctx) {
  main.append(el('h1', {}, t('check_in')));
  if (guard(main)) return;
  const payload = field(t('qr_payload'), { id: 'qr-payload', required: true, maxlength: 300, autocomplete: 'off' });
  const checkInForm = form(t('check_in'), [payload], 'check_in', async (out) => {
    const text = payload.input.value.trim();
    const ticketId = text.split('|')[0];
    const admitted = await api('POST', `/tickets/${encodeURIComponent(ticketId)}/check-in`, { body: { qr_payload: text } });
    ok(out, `${t('check_in_ok')}: ${admitted.ticket_id.slice(0, 8)}`, 'admitted');
  }, 'check-in-form');
  main.append(checkInForm);
  // With a camera and a browser whose detector reads QR codes, a code is read from the
  // camera too and the ticket checked in at once. Some browsers have the detector but no
  // QR format (Chromium on Linux): there the form alone is shown.
  if (!('BarcodeDetector' in window) || !navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const formats = await window.BarcodeDetector.getSupportedFormats().catch(() => []);
  if (!formats.includes('qr_code')) return;
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  if (!devices.some((d) => d.kind === 'videoinput')) return;
  const video = el('video', { id: 'qr-video', muted: true, playsinline: true, 'aria-label': t('camera_view'), hidden: true });
  const scanOut = el('div', { class: 'out', id: 'qr-scan-out', 'aria-live': 'polite' });
  const toggle = el('button', { type: 'button', id: 'qr-scan' }, t('scan'));
  let stream = null;
  function stopScan() {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.hidden = true;
    toggle.textContent = t('scan');
  }
  toggle.addEventListener('click', async () => {
    if (stream) { stopScan(); return; }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    } catch (err) {
      scanOut.replaceChildren(el('p', { class: 'problem', role: 'alert' }, String(err.message || err)));
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    toggle.textContent = t('stop_scan');
    await video.play();
    const detector = new window.BarcodeDetector({ formats: ['qr_code'] });
    const look = async () => {
      if (!stream) return;
      const codes = await detector.detect(video).catch(() => []);
      if (codes.length) {
        payload.input.value = codes[0].rawValue;
        scanOut.replaceChildren(el('p', { class: 'notice ok', id: 'qr-scanned' }, t('scanned')));
        stopScan();
        checkInForm.requestSubmit();
        return;
      }
      setTimeout(look, 250);
    };
    look();
  });
  ctx.onLeave(stopScan);
  main.append(section(t('scan'), toggle, video, scanOut));
}

// --- operations ---------------------------------------------------------------------

async function sagas(main, _ctx, id) {
  main.append(el('h1', {}, t('sagas')));
  if (guard(main)) return;
  const sagaId = field(t('saga_id'), { id: 'saga-id', required: true, value: id || '' });
  const box = el('div', { id: 'saga' });
  async function show(value) {
    const saga = await api('GET', `/admin/sagas/${encodeURIComponent(value)}`);
    const out = el('div', { class: 'out' });
    const resume = saga.status === 'stuck' ? el('button', { type: 'button', id: 'resume-saga' }, t('resume')) : '';
    if (resume) {
      resume.addEventListener('click', () => attempt(out, async () => {
        const answer = await api('POST', `/admin/sagas/${encodeURIComponent(value)}/resume`, { body: {} });
        await show(value);
        box.append(el('p', { class: 'notice ok', id: 'resumed' }, `${t('resumed')}: ${statusWord(answer.status)} (${t('redriven')}: ${answer.redriven.join(', ') || t('none')})`));
      }));
    }
    box.replaceChildren(
      el('p', {}, `${t('status')}: `, el('strong', { id: 'saga-status', 'data-status': saga.status }, statusWord(saga.status)), ` · ${saga.saga_type || ''}`),
      saga.last_error ? el('p', { class: 'problem', id: 'saga-error' }, `${t('last_error')}: ${saga.last_error}`) : '',
      el('div', { class: 'table-wrap' }, table(t('steps'), [t('steps'), t('created_at'), t('detail')],
        (saga.steps || []).map((s) => [s.step, when(s.at || s.created_at), s.error || s.detail || '']), { id: 'saga-steps' })),
      resume, out);
  }
  main.append(form(t('find'), [sagaId], 'find', async () => show(sagaId.input.value.trim()), 'saga-form'), box);
  if (id) await show(id);
}

async function deadLetters(main) {
  main.append(el('h1', {}, t('dead_letters')));
  if (guard(main)) return;
  const list = el('div', { id: 'dead-letters' });
  const detail = el('div', { id: 'dead-letter' });
  async function load() {
    const page = await api('GET', '/admin/dead-letters');
    if (!page.dead_letters.length) {
      list.replaceChildren(el('p', { id: 'no-dead-letters' }, t('none')));
      return;
    }
    list.replaceChildren(el('div', { class: 'table-wrap' }, table(t('dead_letters'), ['#', 'consumer', 'aggregate', 'event', t('last_error'), ''],
      page.dead_letters.map((d) => {
        const out = el('span', {});
        const inspect = el('button', { type: 'button', class: 'secondary', 'data-inspect': d.dlq_sequence }, t('detail'));
        inspect.addEventListener('click', () => attempt(out, async () => {
          const full = await api('GET', `/admin/dead-letters/${d.dlq_sequence}`);
          detail.replaceChildren(section(`#${d.dlq_sequence}`, el('pre', {}, JSON.stringify(full, null, 2))));
        }));
        const redrive = el('button', { type: 'button', 'data-redrive': d.dlq_sequence }, t('redrive'));
        redrive.addEventListener('click', () => attempt(out, async () => {
          const answer = await api('POST', `/admin/dead-letters/${d.dlq_sequence}/redrive`, { body: {} });
          await load();
          list.prepend(el('p', { class: 'notice ok', id: 'redriven' }, `${t('redriven')}: ${answer.redriven.join(', ')}`));
        }));
        return [d.dlq_sequence, d.consumer, `${d.aggregate_type} ${d.aggregate_id}`, d.event_type, d.error, el('span', {}, inspect, ' ', redrive, out)];
      }))));
  }
  main.append(list, detail);
  await load();
}

/** A view of another module: its heading, the admin check, then the view itself. */
function adminView(titleKey, view) {
  return async (main, ctx, ...params) => {
    main.append(el('h1', {}, t(titleKey)));
    if (guard(main)) return;
    await view(main, ctx, ...params);
  };
}

function login(main) {
  main.append(loginForm(async () => { location.hash = '#/'; }));
}

start({
  titleKey: 'admin_title',
  links: [
    ['#/catalog', 'products', isAdmin], ['#/categories', 'categories', isAdmin], ['#/promotions', 'promotions', isAdmin], ['#/orders', 'orders', isAdmin],
    ['#/providers', 'providers', isAdmin], ['#/shows', 'shows', isAdmin], ['#/check-in', 'check_in', isAdmin],
    ['#/aftersales', 'aftersales', isAdmin], ['#/reviews', 'review_moderation', isAdmin], ['#/booking-refunds', 'booking_refunds', isAdmin],
    ['#/sagas', 'sagas', isAdmin], ['#/dead-letters', 'dead_letters', isAdmin], ['#/projections', 'projections', isAdmin],
    ['#/streams', 'streams', isAdmin], ['#/metrics', 'metrics', isAdmin], ['#/alerts', 'alerts', isAdmin],
  ],
  routes: {
    '#/': home,
    '#/catalog': catalog,
    '#/categories': adminView('categories', categories),
    '#/products/:sku': adminView('edit_product', productEditor),
    '#/promotions': promotions,
    '#/orders': orders,
    '#/orders/:id': orders,
    '#/providers': providers,
    '#/shows': shows,
    '#/check-in': checkIn,
    '#/sagas': sagas,
    '#/sagas/:id': sagas,
    '#/dead-letters': deadLetters,
    '#/aftersales': adminView('aftersales', aftersales),
    '#/aftersales/:id': adminView('aftersale', aftersale),
    '#/reviews': adminView('review_moderation', reviews),
    '#/booking-refunds': adminView('booking_refunds', bookingRefunds),
    '#/projections': adminView('projections', projections),
    '#/streams': adminView('streams', streams),
    '#/metrics': adminView('metrics', metrics),
    '#/alerts': adminView('alerts', alerts),
    '#/login': login,
  },
});
