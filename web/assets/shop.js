// The storefront and box office at `/`: catalog, search, product pages, the cart (a guest's,
// merged at login), checkout with coupons and the sandbox payment, orders with shipments,
// coupons, live notifications; shows, sessions, bookings and tickets with their QR codes.
// Reviews, after-sales and booking refund requests are in shop_aftersales.js.
import {
  api, attempt, el, eventStream, field, idempotencyKey, loginForm, money, poll, Problem,
  registerForm, say, section, session, showProblem, start, t, table, when,
} from './common.js';
import { statusWord } from './i18n.js';
import { bookingRefund, orderAftersales, productReviews } from './shop_aftersales.js';

const CART = 'ordo.cart';

function guestToken() {
  return localStorage.getItem(CART);
}

/** Headers of a cart call: the guest token when nobody is logged in. */
function cartHeaders() {
  const token = guestToken();
  return !session() && token ? { 'ordo-cart': token } : {};
}

async function ensureCart() {
  if (session() || guestToken()) return;
  const created = await api('POST', '/carts');
  localStorage.setItem(CART, created.cart_token);
}

/** After a login or registration: the guest cart joins the customer's. */
async function mergeGuestCart() {
  const token = guestToken();
  if (!token) return;
  try {
    await api('POST', '/cart/merge', { body: { cart_token: token } });
    say(t('cart_merged'), 'ok');
  } catch (err) {
    if (!(err instanceof Problem) || err.status !== 404) throw err;
  }
  localStorage.removeItem(CART);
}

function needLogin(main) {
  if (session()) return false;
  main.append(el('p', { class: 'notice' }, t('need_login'), ' ', el('a', { href: '#/login' }, t('login'))));
  return true;
}

function heading(main, text) {
  main.append(el('h1', {}, text));
}

// --- catalog and search -------------------------------------------------------------

async function catalog(main) {
  heading(main, t('catalog'));
  const categories = await api('GET', '/categories').catch(() => ({ categories: [] }));
  const choice = field(t('category'), {
    tag: 'select', id: 'category',
    options: [['', t('all_categories')], ...categories.categories.map((c) => [c.category_id, c.name])],
  });
  const query = field(t('search'), { type: 'search', id: 'search-q', placeholder: t('search_placeholder'), maxlength: 200 });
  const form = el('form', { class: 'row', role: 'search' }, query, el('button', { type: 'submit' }, t('search')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/search/${encodeURIComponent(query.input.value.trim())}`;
  });
  const list = el('ul', { class: 'grid', id: 'products' });
  async function load() {
    const id = choice.input.value;
    const page = await api('GET', `/products?limit=100${id ? `&category_id=${id}` : ''}`);
    list.replaceChildren(...page.products.map((p) => el('li', { 'data-sku': p.sku },
      el('h2', {}, el('a', { href: `#/product/${encodeURIComponent(p.sku)}` }, p.name)),
      el('p', { class: 'muted' }, p.category),
      el('p', { class: 'price' }, money(p.price, p.currency)))));
    if (!page.products.length) list.append(el('li', {}, t('no_results')));
  }
  choice.input.addEventListener('change', () => attempt(list, load));
  main.append(form, choice, list);
  await load();
}

async function search(main, _ctx, q, facet = '') {
  heading(main, `${t('results')}: ${q}`);
  const params = new URLSearchParams({ q });
  const [kind, value] = facet.split('=');
  if (kind && value) params.set(kind, value);
  const page = await api('GET', `/search?${params}`);
  const facets = el('nav', { 'aria-label': t('facets') });
  for (const [name, counts] of Object.entries(page.facets || {})) {
    // The chosen facet is marked, so the page says which filter narrowed the results.
    const items = Object.entries(counts).map(([v, n]) => el('li', {},
      el('a', {
        href: `#/search/${encodeURIComponent(q)}/${name}=${encodeURIComponent(v)}`,
        'aria-current': name === kind && v === value ? 'page' : undefined,
      }, `${v} (${n})`)));
    if (items.length) facets.append(el('h2', {}, t(name)), el('ul', {}, ...items));
  }
  const results = el('ul', { class: 'grid', id: 'results' }, ...page.results.map((hit) => el('li', {},
    el('h2', {}, el('a', { href: hit.type === 'show' ? `#/shows/${hit.id}` : `#/product/${encodeURIComponent(hit.id)}` }, hit.title)),
    el('p', { class: 'muted' }, [hit.category, hit.city].filter(Boolean).join(' · ')),
    el('p', { class: 'price' }, money(hit.price, hit.currency)),
    el('p', {}, hit.available ? t('in_stock') : t('out_of_stock')))));
  if (!page.results.length) results.append(el('li', {}, t('no_results')));
  main.append(facets, results);
}

async function product(main, ctx, sku) {
  const p = await api('GET', `/products/${encodeURIComponent(sku)}`);
  heading(main, p.name);
  const stock = await api('GET', `/inventory/${encodeURIComponent(sku)}`).catch(() => null);
  const siblings = await api('GET', `/products?limit=100${p.category_id ? `&category_id=${p.category_id}` : ''}`)
    .then((page) => page.products.filter((o) => o.product_id === p.product_id)).catch(() => [p]);
  const spec = Object.entries(p.spec || {}).map(([k, v]) => `${k}: ${v}`).join(', ');
  main.append(el('p', {}, p.description), el('p', { class: 'muted' }, p.category));
  if (siblings.length > 1) {
    const choice = field(t('sku'), { tag: 'select', id: 'sku-choice', options: siblings.map((s) => [s.sku, `${s.sku} ${Object.values(s.spec || {}).join(' ')}`]) });
    choice.input.value = sku;
    choice.input.addEventListener('change', () => { location.hash = `#/product/${encodeURIComponent(choice.input.value)}`; });
    main.append(choice);
  }
  if (spec) main.append(el('p', {}, spec));
  main.append(el('p', { class: 'price', id: 'price' }, money(p.price, p.currency)));
  if (stock) main.append(el('p', { id: 'stock' }, `${t('stock')}: ${stock.available} ${stock.available > 0 ? t('in_stock') : t('out_of_stock')}`));
  const quantity = field(t('quantity'), { type: 'number', id: 'quantity', min: 1, max: 100, value: 1 });
  const out = el('div', { class: 'out' });
  const add = el('button', { type: 'button', id: 'add-to-cart', disabled: !p.on_sale }, p.on_sale ? t('add_to_cart') : t('off_sale'));
  add.addEventListener('click', () => attempt(out, async () => {
    await ensureCart();
    const current = await api('GET', '/cart', { headers: cartHeaders() });
    const line = current.items.find((i) => i.sku === sku);
    const wanted = Number(quantity.input.value || 1) + (line ? line.quantity : 0);
    await api('PUT', `/cart/items/${encodeURIComponent(sku)}`, { body: { quantity: wanted }, headers: cartHeaders() });
    out.replaceChildren(el('p', { class: 'notice ok', id: 'added' }, t('added_to_cart'), ' ', el('a', { href: '#/cart' }, t('cart'))));
  }));
  main.append(el('div', { class: 'row' }, quantity, add), out);
  await productReviews(main, ctx, sku);
}

// --- cart and checkout --------------------------------------------------------------

function totals(view) {
  return el('dl', { class: 'totals' },
    el('dt', {}, t('subtotal')), el('dd', { id: 'subtotal' }, money(view.subtotal, view.currency)),
    ...(view.discounts || []).flatMap((d) => [el('dt', {}, d.label || d.source || t('discounts')), el('dd', {}, `- ${money(d.amount, view.currency)}`)]),
    view.shipping_fee !== undefined ? [el('dt', {}, t('shipping_fee')), el('dd', {}, money(view.shipping_fee, view.currency))] : [],
    el('dt', {}, t('total')), el('dd', { id: 'total', class: 'price' }, money(view.total, view.currency)));
}

async function cart(main) {
  heading(main, t('cart'));
  if (!session() && !guestToken()) {
    main.append(el('p', { id: 'cart-empty' }, t('empty_cart')));
    return;
  }
  const view = await api('GET', '/cart', { headers: cartHeaders() });
  if (!view.items.length) {
    main.append(el('p', { id: 'cart-empty' }, t('empty_cart')));
    return;
  }
  const out = el('div', { class: 'out' });
  const rows = view.items.map((item) => {
    const q = el('input', { type: 'number', min: 0, max: 100, value: item.quantity, 'aria-label': `${t('quantity')} ${item.name}`, 'data-sku': item.sku });
    const change = el('button', { type: 'button', class: 'secondary' }, t('update'));
    change.addEventListener('click', () => attempt(out, async () => {
      await api('PUT', `/cart/items/${encodeURIComponent(item.sku)}`, { body: { quantity: Number(q.value) }, headers: cartHeaders() });
      main.replaceChildren();
      await cart(main);
    }));
    return [item.name, item.sku, el('span', {}, q, change), money(item.unit_price, view.currency), money(item.line_total, view.currency),
      item.available < item.quantity ? `${t('stock')}: ${item.available}` : ''];
  });
  main.append(el('div', { class: 'table-wrap' }, table(t('cart'), [t('name'), t('sku'), t('quantity'), t('price'), t('subtotal'), t('stock')], rows, { id: 'cart-lines' })),
    totals(view), out);
  main.append(session()
    ? el('a', { href: '#/checkout', id: 'to-checkout', class: 'button' }, t('checkout'))
    : el('p', {}, t('need_login'), ' ', el('a', { href: '#/login', id: 'cart-login' }, t('login')), ' / ',
      el('a', { href: '#/register', id: 'cart-register' }, t('register'))));
}

async function addressForm(after) {
  const fields = {
    recipient: field(t('recipient'), { id: 'addr-recipient', required: true, maxlength: 100 }),
    phone: field(t('phone'), { id: 'addr-phone', required: true, type: 'tel', maxlength: 30 }),
    province: field(t('province'), { id: 'addr-province', required: true, maxlength: 100 }),
    city: field(t('city'), { id: 'addr-city', required: true, maxlength: 100 }),
    detail: field(t('detail'), { id: 'addr-detail', required: true, maxlength: 200 }),
  };
  const out = el('div', { class: 'out' });
  const form = el('form', { class: 'card', 'aria-label': t('add_address') }, el('h3', {}, t('add_address')), ...Object.values(fields),
    el('button', { type: 'submit', id: 'addr-save' }, t('save')), out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const body = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.input.value.trim()]));
      const added = await api('POST', '/users/me/addresses', { body });
      await after(added.address_id);
    });
  });
  return form;
}

async function checkout(main, ctx) {
  heading(main, t('checkout'));
  if (needLogin(main)) return;
  const [addresses, coupons] = await Promise.all([
    api('GET', '/users/me/addresses').catch(() => ({ addresses: [] })),
    api('GET', '/coupons?status=claimed', { headers: { prefer: 'wait=5' } }).catch(() => ({ coupons: [] })),
  ]);
  const address = field(t('address'), {
    tag: 'select', id: 'address',
    options: [['', t('no_address')], ...(addresses.addresses || []).map((a) => [a.address_id, `${a.recipient} ${a.city} ${a.detail}`])],
  });
  const chosen = new Set();
  const couponList = el('fieldset', { id: 'coupon-choices' }, el('legend', {}, t('use_coupons')),
    ...(coupons.coupons.length ? coupons.coupons.map((c) => {
      const id = `coupon-${c.coupon_id}`;
      const box = el('input', { type: 'checkbox', id, value: c.coupon_id });
      box.addEventListener('change', () => { if (box.checked) chosen.add(c.coupon_id); else chosen.delete(c.coupon_id); });
      return el('div', {}, box, ' ', el('label', { for: id }, `${c.name || c.batch_id} (${c.kind === 'percent_off' ? `${c.value}%` : money(c.value, c.currency)})`));
    }) : [el('p', {}, t('no_coupons'))]));
  const quote = el('div', { id: 'quote' });
  const out = el('div', { class: 'out' });
  const previewButton = el('button', { type: 'button', id: 'preview', class: 'secondary' }, t('preview'));
  const placeButton = el('button', { type: 'button', id: 'place-order' }, t('place_order'));
  const body = () => ({
    from_cart: true,
    coupon_ids: [...chosen],
    ...(address.input.value ? { address_id: address.input.value } : {}),
  });
  let currentQuote = null;
  async function preview() {
    currentQuote = await api('POST', '/orders/prepare', { body: body() });
    const q = currentQuote;
    quote.replaceChildren(
      el('div', { class: 'table-wrap' }, table(t('order'), [t('sku'), t('quantity'), t('price'), t('discounts'), t('subtotal')],
        q.lines.map((l) => [l.sku, l.quantity, money(l.unit_price, q.currency), money(l.discount, q.currency), money(l.line_total, q.currency)]))),
      totals({ ...q, discounts: q.discounts.map((d) => ({ label: `${d.source}`, amount: d.amount })) }),
      q.refusals.length ? el('div', { class: 'problem', id: 'refusals' }, el('strong', {}, t('refusals')),
        el('ul', {}, ...q.refusals.map((r) => el('li', {}, `${r.source}: ${r.reason}`)))) : '');
  }
  previewButton.addEventListener('click', () => attempt(out, preview));
  placeButton.addEventListener('click', () => attempt(out, async () => {
    if (!currentQuote) await preview();
    const order = await api('POST', '/orders', {
      body: { quote_id: currentQuote.quote_id },
      headers: { prefer: 'wait=10', 'idempotency-key': idempotencyKey() },
    });
    location.hash = `#/orders/${order.order_id}`;
  }));
  main.append(address, el('details', {}, el('summary', {}, t('add_address')),
    await addressForm(async () => { main.replaceChildren(); await checkout(main, ctx); })),
  couponList, el('div', { class: 'row' }, previewButton, placeButton), quote, out);
  await attempt(out, preview);
}

// --- orders -------------------------------------------------------------------------

async function orders(main) {
  heading(main, t('orders'));
  if (needLogin(main)) return;
  const page = await api('GET', '/orders?limit=50', { headers: { prefer: 'wait=5' } });
  if (!page.orders.length) {
    main.append(el('p', {}, t('no_orders')));
    return;
  }
  main.append(el('div', { class: 'table-wrap' }, table(t('orders'), [t('order'), t('status'), t('total'), t('created_at')],
    page.orders.map((o) => [el('a', { href: `#/orders/${o.order_id}` }, o.order_id.slice(0, 8)), statusWord(o.status), money(o.total, o.currency), when(o.placed_at)]), { id: 'order-list' })));
}

async function orderPage(main, ctx, id) {
  heading(main, `${t('order')} ${id.slice(0, 8)}`);
  if (needLogin(main)) return;
  const box = el('div', { id: 'order' });
  const out = el('div', { class: 'out' });
  main.append(box, out);
  let timer = null;
  ctx.onLeave(() => clearTimeout(timer));
  async function load() {
    const order = await api('GET', `/orders/${id}`, { headers: { prefer: 'wait=5' } });
    const status = el('p', {}, `${t('status')}: `, el('strong', { id: 'order-status', 'data-status': order.status }, statusWord(order.status)));
    box.replaceChildren(status,
      el('div', { class: 'table-wrap' }, table(t('order'), [t('sku'), t('quantity'), t('price')], order.items.map((l) => [l.sku, l.quantity, money(l.unit_price, order.currency)]))),
      totals(order));
    if (order.status === 'awaiting_payment') {
      const method = field(t('payment_method'), { tag: 'select', id: 'payment-method', options: [['card', 'Card'], ['alipay', '支付宝 Alipay'], ['wechat', '微信支付 WeChat Pay']] });
      const pay = el('button', { type: 'button', id: 'pay' }, t('pay_sandbox'));
      pay.addEventListener('click', () => attempt(out, async () => {
        pay.disabled = true;
        await api('POST', `/orders/${id}/pay`, {
          body: { payment_method: method.input.value, payment_token: 'tok_success' },
          headers: { prefer: 'wait=10', 'idempotency-key': idempotencyKey() },
        });
        await poll(async () => (await api('GET', `/orders/${id}`)).status !== 'awaiting_payment', { tries: 30 });
        await load();
      }));
      box.append(el('div', { class: 'row' }, method, pay));
    }
    for (const s of order.shipments || []) {
      box.append(section(`${t('shipment')} ${s.shipment_id.slice(0, 8)}`,
        el('p', {}, `${t('status')}: ${statusWord(s.status)}`, s.carrier ? ` · ${s.carrier} ${s.tracking_no || ''}` : ''),
        el('ol', { 'aria-label': t('tracking') }, ...(s.tracking || []).map((e) => el('li', {}, `${when(e.at)} ${statusWord(e.status)} ${e.description || e.location || ''}`)))));
    }
    box.append(...orderAftersales(order, ctx, out, load));
    if (order.status === 'pending') timer = setTimeout(() => attempt(out, load), 1000);
  }
  await load();
}

// --- coupons and notifications ------------------------------------------------------

async function coupons(main) {
  heading(main, t('coupons'));
  if (needLogin(main)) return;
  const code = field(t('coupon_code'), { id: 'claim-batch', required: true, pattern: '[0-9a-fA-F-]{36}', maxlength: 36 });
  const out = el('div', { class: 'out' });
  const list = el('div', { id: 'coupon-list' });
  const form = el('form', { class: 'row' }, code, el('button', { type: 'submit', id: 'claim' }, t('claim')));
  async function load(wait) {
    const page = await api('GET', '/coupons?limit=100', { headers: wait ? { prefer: 'wait=5' } : {} });
    list.replaceChildren(page.coupons.length
      ? el('div', { class: 'table-wrap' }, table(t('coupons'), [t('name'), t('value'), t('min_spend'), t('status'), t('valid_until')],
        page.coupons.map((c) => [c.name || c.batch_id, c.kind === 'percent_off' ? `${c.value}%` : money(c.value, c.currency), money(c.min_spend, c.currency), statusWord(c.status), when(c.valid_until)])))
      : el('p', {}, t('no_coupons')));
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      await api('POST', '/coupons/claim', { body: { batch_id: code.input.value.trim() }, headers: { 'idempotency-key': idempotencyKey() } });
      out.replaceChildren(el('p', { class: 'notice ok', id: 'claimed' }, t('claimed')));
      await load(true);
    });
  });
  main.append(form, out, list);
  await load(false);
}

let unread = 0;
let stopStream = null;

function showUnread() {
  const link = document.getElementById('nav-notifications');
  if (link) link.textContent = unread ? `${t('notifications')} (${unread} ${t('unread')})` : t('notifications');
}

async function watchNotifications(current) {
  if (stopStream) { stopStream(); stopStream = null; }
  unread = 0;
  if (!current || current.role === 'admin') return;
  try {
    const page = await api('GET', '/notifications?unread=true&limit=100');
    unread = page.notifications.length;
    showUnread();
  } catch { /* the count stays unknown */ }
  stopStream = eventStream('/notifications/stream', (entry) => {
    unread += 1;
    showUnread();
    say(`${entry.title || ''} ${entry.body || ''}`.trim());
    document.dispatchEvent(new CustomEvent('ordo:notification', { detail: entry }));
  });
}

async function notifications(main, ctx) {
  heading(main, t('notifications'));
  if (needLogin(main)) return;
  const list = el('ul', { id: 'notification-list' });
  async function load() {
    const page = await api('GET', '/notifications?limit=50');
    list.replaceChildren(...page.notifications.map((n) => {
      const read = el('button', { type: 'button', class: 'secondary', disabled: !!n.read_at }, t('mark_read'));
      read.addEventListener('click', async () => {
        await api('POST', `/notifications/${n.notification_id}/read`, { body: {} });
        unread = Math.max(0, unread - 1);
        showUnread();
        await load();
      });
      return el('li', { class: 'card' }, el('strong', {}, n.title), el('p', {}, n.body), el('p', { class: 'muted' }, when(n.created_at)), read);
    }));
    if (!page.notifications.length) list.append(el('li', {}, t('no_notifications')));
  }
  const again = () => load();
  document.addEventListener('ordo:notification', again);
  ctx.onLeave(() => document.removeEventListener('ordo:notification', again));
  main.append(list);
  await load();
}

// --- box office ---------------------------------------------------------------------

async function shows(main) {
  heading(main, t('shows'));
  const city = field(t('city'), { id: 'show-city', maxlength: 100 });
  const category = field(t('category'), { id: 'show-category', maxlength: 100 });
  const list = el('ul', { class: 'grid', id: 'show-list' });
  const form = el('form', { class: 'row' }, city, category, el('button', { type: 'submit', id: 'show-filter' }, t('filter')));
  async function load() {
    const params = new URLSearchParams({ limit: '50' });
    if (city.input.value.trim()) params.set('city', city.input.value.trim());
    if (category.input.value.trim()) params.set('category', category.input.value.trim());
    const page = await api('GET', `/shows?${params}`);
    list.replaceChildren(...page.shows.map((s) => el('li', {},
      el('h2', {}, el('a', { href: `#/shows/${s.show_id}` }, s.title)),
      el('p', {}, `${s.city} · ${s.venue}`), el('p', { class: 'muted' }, `${s.category} · ${when(s.date)}`))));
    if (!page.shows.length) list.append(el('li', {}, t('no_shows')));
  }
  form.addEventListener('submit', (event) => { event.preventDefault(); attempt(list, load); });
  main.append(form, list);
  await load();
}

async function showPage(main, ctx, id) {
  const show = await api('GET', `/shows/${id}`);
  heading(main, show.title);
  main.append(el('p', {}, `${show.city} · ${show.venue} · ${show.category}`), el('p', {}, show.description));
  const sessionsBox = el('div', { id: 'sessions', 'aria-live': 'polite' });
  const out = el('div', { class: 'out' });
  main.append(section(t('sessions'), sessionsBox), out);
  const counts = new Map();
  async function load() {
    const list = await api('GET', `/shows/${id}/sessions`);
    if (sessionsBox.childElementCount) {
      for (const s of list.sessions) {
        for (const a of s.seat_areas) {
          const cell = counts.get(`${s.session_id}/${a.area_id}`);
          if (cell) cell.textContent = `${a.available} ${t('available')}`;
        }
      }
      return;
    }
    sessionsBox.replaceChildren(...list.sessions.map((s) => el('div', { class: 'card' },
      el('h3', {}, when(s.date)),
      el('ul', {}, ...s.seat_areas.map((a) => {
        const quantity = el('input', { type: 'number', min: 1, max: 6, value: 1, 'aria-label': `${t('quantity')} ${a.name}`, id: `q-${a.area_id}-${s.session_id.slice(0, 8)}` });
        const count = el('span', { class: 'badge', 'data-area': a.area_id }, `${a.available} ${t('available')}`);
        counts.set(`${s.session_id}/${a.area_id}`, count);
        const book = el('button', { type: 'button', 'data-book': a.area_id }, t('book'));
        book.addEventListener('click', () => attempt(out, async () => {
          if (!session()) { location.hash = '#/login'; return; }
          const booking = await api('POST', '/bookings', {
            body: { session_id: s.session_id, seat_area_id: a.area_id, quantity: Number(quantity.value) },
            headers: { prefer: 'wait=10', 'idempotency-key': idempotencyKey() },
          });
          location.hash = `#/bookings/${booking.booking_id}`;
        }));
        return el('li', {}, `${a.name} · ${money(a.price, a.currency)} · `, count, ' ', quantity, ' ', book);
      })))));
  }
  await load();
  // Seats available follow the sales of others.
  const timer = setInterval(() => load().catch(() => {}), 3000);
  ctx.onLeave(() => clearInterval(timer));
}

async function qrImage(ticket) {
  const response = await api('GET', `/tickets/${ticket.ticket_id}/qr.png`, { raw: true, headers: { accept: 'image/png' } });
  const url = URL.createObjectURL(await response.blob());
  return el('img', { src: url, alt: `${t('ticket_qr')} ${ticket.ticket_id.slice(0, 8)}`, width: 192, height: 192 });
}

async function bookingPage(main, ctx, id) {
  heading(main, `${t('booking')} ${id.slice(0, 8)}`);
  if (needLogin(main)) return;
  const box = el('div', { id: 'booking' });
  const out = el('div', { class: 'out' });
  main.append(box, out);
  let timers = [];
  ctx.onLeave(() => timers.forEach(clearInterval));
  async function load() {
    timers.forEach(clearInterval);
    timers = [];
    const b = await api('GET', `/bookings/${id}`, { headers: { prefer: 'wait=5' } });
    box.replaceChildren(
      el('p', {}, `${t('status')}: `, el('strong', { id: 'booking-status', 'data-status': b.status }, statusWord(b.status))),
      el('p', {}, `${t('seat_area')}: ${b.seat_area_id} × ${b.quantity} · ${t('total')}: ${money(b.total_amount, b.currency)}`));
    if (b.status === 'pending_payment' && b.expires_at) {
      const left = el('span', { class: 'countdown', id: 'countdown' });
      const tick = () => {
        const ms = new Date(b.expires_at) - Date.now();
        const s = Math.max(0, Math.floor(ms / 1000));
        left.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
      };
      tick();
      timers.push(setInterval(tick, 1000));
      const pay = el('button', { type: 'button', id: 'pay-booking' }, t('pay_sandbox'));
      pay.addEventListener('click', () => attempt(out, async () => {
        pay.disabled = true;
        await api('POST', `/bookings/${id}/pay`, {
          body: { payment_method: 'alipay', payment_token: 'tok_success' },
          headers: { prefer: 'wait=10', 'idempotency-key': idempotencyKey() },
        });
        await poll(async () => {
          const now = await api('GET', `/bookings/${id}`);
          return now.status !== 'pending_payment' && now.tickets.length >= now.quantity ? now : null;
        }, { tries: 40 });
        await load();
      }));
      box.append(el('p', {}, `${t('pay_before')} ${when(b.expires_at)} · ${t('time_left')}: `, left), pay);
    }
    if (b.tickets.length) {
      const list = el('ul', { class: 'grid', id: 'tickets' });
      for (const ticket of b.tickets) {
        const item = el('li', { class: 'qr', 'data-ticket': ticket.ticket_id },
          el('p', {}, ticket.checked_in ? t('checked_in') : t('not_checked_in')));
        try { item.prepend(await qrImage(ticket)); } catch (err) { if (err instanceof Problem) showProblem(err, out); }
        item.append(el('details', {}, el('summary', {}, t('qr_payload')), el('code', { class: 'payload' }, ticket.qr_payload)));
        list.append(item);
      }
      box.append(section(t('tickets'), list));
    }
    box.append(bookingRefund(b, out, load));
    if (b.status === 'pending') timers.push(setTimeout(() => attempt(out, load), 1000));
  }
  await load();
}

async function bookings(main) {
  heading(main, t('bookings'));
  if (needLogin(main)) return;
  const page = await api('GET', '/bookings?limit=50', { headers: { prefer: 'wait=5' } });
  main.append(page.bookings.length
    ? el('div', { class: 'table-wrap' }, table(t('bookings'), [t('booking'), t('status'), t('total')],
      page.bookings.map((b) => [el('a', { href: `#/bookings/${b.booking_id}` }, b.booking_id.slice(0, 8)), statusWord(b.status), money(b.total_amount, b.currency)])))
    : el('p', {}, t('no_orders')));
}

// --- login --------------------------------------------------------------------------

async function afterLogin() {
  await mergeGuestCart();
  location.hash = guestWasShopping ? '#/cart' : '#/';
}
let guestWasShopping = false;

function login(main) {
  guestWasShopping = !!guestToken();
  main.append(loginForm(afterLogin), el('p', {}, el('a', { href: '#/register' }, t('register'))));
}

function register(main) {
  guestWasShopping = !!guestToken();
  main.append(registerForm(afterLogin), el('p', {}, el('a', { href: '#/login' }, t('login'))));
}

const signedIn = (s) => !!s;

start({
  titleKey: 'shop_title',
  links: [
    ['#/', 'catalog'], ['#/shows', 'shows'], ['#/cart', 'cart'], ['#/orders', 'orders', signedIn],
    ['#/bookings', 'bookings', signedIn], ['#/coupons', 'coupons', signedIn], ['#/notifications', 'notifications', signedIn],
  ],
  routes: {
    '#/': catalog,
    '#/search/:q': search,
    '#/search/:q/:facet': search,
    '#/product/:sku': product,
    '#/cart': cart,
    '#/checkout': checkout,
    '#/orders': orders,
    '#/orders/:id': orderPage,
    '#/coupons': coupons,
    '#/notifications': notifications,
    '#/shows': shows,
    '#/shows/:id': showPage,
    '#/bookings': bookings,
    '#/bookings/:id': bookingPage,
    '#/login': login,
    '#/register': register,
  },
  onSession: (current) => { watchNotifications(current); },
});
