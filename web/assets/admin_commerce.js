// The admin console's commerce decisions: after-sales requests (approve, reject, receive the
// goods), the moderation queues of product and provider reviews (publish, reject) and the
// fans' booking refund requests (approve, reject). Each view assumes an admin is logged in.
import {
  api, attempt, el, field, money, poll, section, t, table, when,
} from './common.js';
import { addWords, statusWord } from './i18n.js';

addWords({
  aftersales: ['售后', 'After-sales'],
  aftersale: ['售后申请', 'After-sales request'],
  aftersale_kind: ['售后类型', 'Kind'],
  kind_refund_only: ['仅退款', 'refund only'],
  kind_return_refund: ['退货退款', 'return and refund'],
  kind_exchange: ['换货', 'exchange'],
  refund_amount: ['退款金额', 'Refund'],
  evidence: ['凭证', 'Evidence'],
  return_parcel: ['退货包裹', 'Return parcel'],
  receive_goods: ['确认收到退货', 'Goods received'],
  rejection_reason: ['拒绝原因', 'Why rejected'],
  replacement: ['换货发货单', 'Replacement shipment'],
  refund_error: ['退款失败原因', 'Refund failure'],
  open: ['查看', 'Open'],
  next_page: ['下一页', 'Next page'],
  no_aftersales: ['没有售后申请', 'No after-sales requests'],
  review_moderation: ['评价审核', 'Review moderation'],
  product_reviews: ['商品评价', 'Product reviews'],
  provider_reviews: ['服务评价', "Providers' reviews"],
  waiting_decision: ['待处理 (待审核和已隐藏)', 'Waiting (held and hidden)'],
  comment: ['内容', 'Comment'],
  reports: ['举报数', 'Reports'],
  publish: ['发布', 'Publish'],
  no_reviews: ['没有评价', 'No reviews'],
  service_order: ['服务单', 'Service order'],
  booking_refunds: ['退票申请', 'Refund requests'],
  no_refund_requests: ['没有退票申请', 'No refund requests'],
  requested_at: ['申请时间', 'Asked'],
  decided: ['已处理', 'Decided'],
  status_requested: ['待处理', 'requested'],
  status_approved: ['已批准', 'approved'],
  status_awaiting_return: ['待退货', 'awaiting the goods'],
  status_received: ['已收到退货', 'goods received'],
  status_refund_failed: ['退款失败', 'refund failed'],
  status_replacing: ['换货中', 'replacing'],
  status_closed: ['已关闭', 'closed'],
  status_withdrawn: ['已撤回', 'withdrawn'],
  status_pending_moderation: ['待审核', 'pending moderation'],
  status_hidden: ['已隐藏', 'hidden'],
  status_created: ['待拣货', 'created'],
  status_exception: ['异常', 'exception'],
  status_published_review: ['已发布', 'published'],
});

const short = (id) => String(id).slice(0, 8);
// `published` names a service order awaiting a provider elsewhere; a review is just shown.
const reviewStatus = (status) => (status === 'published' ? t('status_published_review') : statusWord(status));

function notice(out, text, id) {
  out.replaceChildren(el('p', { class: 'notice ok', id }, text));
}

// --- after-sales --------------------------------------------------------------------

/** The after-sales requests, newest first (admins see every customer's), a page at a time. */
export async function aftersales(main) {
  const list = el('div', { id: 'aftersales' });
  const rows = el('tbody', {});
  const out = el('div', { class: 'out' });
  const more = el('button', { type: 'button', class: 'secondary', id: 'aftersales-more', hidden: true }, t('next_page'));
  let cursor = null;
  async function load() {
    const page = await api('GET', `/aftersales?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const a of page.aftersales) {
      rows.append(el('tr', {}, ...[
        el('a', { href: `#/aftersales/${a.aftersale_id}`, 'data-aftersale': a.aftersale_id }, `${t('open')} ${short(a.aftersale_id)}`),
        el('code', {}, short(a.order_id)), t(`kind_${a.kind}`), statusWord(a.status),
        money(a.refund_amount, a.currency), a.reason, when(a.created_at),
      ].map((cell) => el('td', {}, cell))));
    }
    cursor = page.next_cursor;
    more.hidden = !cursor;
    return page;
  }
  more.addEventListener('click', () => attempt(out, load));
  const first = await load();
  if (!first.aftersales.length) {
    list.append(el('p', {}, t('no_aftersales')));
  } else {
    const headers = ['ID', t('order_id'), t('aftersale_kind'), t('status'), t('refund_amount'), t('reason'), t('created_at')];
    list.append(el('div', { class: 'table-wrap' }, el('table', {},
      el('caption', {}, t('aftersales')),
      el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col' }, h)))),
      rows)), more, out);
  }
  main.append(list);
}

/** One request with its decisions: approve, reject with a reason, receive the goods. */
export async function aftersale(main, _ctx, id) {
  const box = el('div', { id: 'aftersale' });
  const out = el('div', { class: 'out', id: 'aftersale-out' });
  const reason = field(t('reason'), { id: 'aftersale-reason', maxlength: 500 });

  async function decide(path, body) {
    const written = await api('POST', `/admin/aftersales/${id}/${path}`, { body });
    // The page reads the request's read model: it shows the decision once applied.
    await poll(async () => {
      const now = await api('GET', `/aftersales/${id}`).catch(() => null);
      return now && now.version >= written.version;
    }, { ms: 300, tries: 40 });
    await show();
    notice(out, `${t('done')}: ${statusWord(written.status)}`, 'aftersale-decided');
  }

  const approve = el('button', { type: 'button', id: 'aftersale-approve' }, t('approve'));
  approve.addEventListener('click', () => attempt(out, () => decide('approve', {})));
  const reject = el('button', { type: 'button', class: 'secondary', id: 'aftersale-reject' }, t('reject'));
  reject.addEventListener('click', () => attempt(out, () => decide('reject', { reason: reason.input.value.trim() })));
  const receive = el('button', { type: 'button', id: 'aftersale-receive' }, t('receive_goods'));
  receive.addEventListener('click', () => attempt(out, () => decide('receive', {})));

  async function show() {
    const a = await api('GET', `/aftersales/${id}`);
    const parcel = a.return_shipment;
    box.replaceChildren(
      el('p', {}, `${t('status')}: `, el('strong', { id: 'aftersale-status', 'data-status': a.status }, statusWord(a.status)),
        ` · ${t(`kind_${a.kind}`)} · ${t('refund_amount')}: ${money(a.refund_amount, a.currency)}`),
      el('p', {}, `${t('order_id')}: `, el('a', { href: `#/orders/${a.order_id}` }, el('code', {}, a.order_id))),
      el('p', {}, `${t('reason')}: ${a.reason}`),
      a.rejection_reason ? el('p', { id: 'aftersale-rejection' }, `${t('rejection_reason')}: ${a.rejection_reason}`) : '',
      a.refund_error ? el('p', { class: 'problem' }, `${t('refund_error')}: ${a.refund_error}`) : '',
      parcel ? el('p', { id: 'aftersale-parcel' }, `${t('return_parcel')}: ${parcel.carrier || ''} ${parcel.tracking_no || ''}`) : '',
      a.replacement_shipment_id ? el('p', {}, `${t('replacement')}: `, el('code', {}, a.replacement_shipment_id)) : '',
      el('div', { class: 'table-wrap' }, table(t('aftersale'), [t('sku'), t('quantity'), t('refund_amount')],
        a.lines.map((l) => [l.sku, l.quantity, money(l.refund, a.currency)]))),
      a.evidence.length ? el('ul', { 'aria-label': t('evidence') }, ...a.evidence.map((url) => el('li', {}, url))) : '');
    approve.disabled = a.status !== 'requested';
    reject.disabled = a.status !== 'requested';
    receive.disabled = a.status !== 'awaiting_return';
  }

  main.append(el('p', {}, el('a', { href: '#/aftersales' }, t('back'))), box,
    section(t('aftersale'), reason, el('div', { class: 'row' }, approve, reject, receive), out));
  await show();
}

// --- review moderation --------------------------------------------------------------

/** Reloads `load` until `settled(page)` holds: the queues are read models. */
async function until(load, settled) {
  return poll(async () => {
    const page = await load().catch(() => null);
    return page && settled(page) ? page : null;
  }, { ms: 300, tries: 40 });
}

function decisionCell(id, label, onPublish, onReject, attributes) {
  const reason = el('input', { type: 'text', maxlength: 500, 'aria-label': `${t('reason')} ${label}`, id: `${attributes.reason}-${id}` });
  const out = el('span', {});
  const publish = el('button', { type: 'button', [attributes.publish]: id }, t('publish'));
  publish.addEventListener('click', () => attempt(out, onPublish));
  const reject = el('button', { type: 'button', class: 'secondary', [attributes.reject]: id }, t('reject'));
  reject.addEventListener('click', () => attempt(out, () => onReject(reason.value.trim())));
  return el('span', {}, reason, ' ', publish, ' ', reject, out);
}

/** The product reviews' and providers' reviews' moderation queues. */
export async function reviews(main) {
  const out = el('div', { class: 'out', id: 'review-out' });
  const status = field(t('status'), {
    id: 'review-status', tag: 'select',
    options: [['', t('waiting_decision')], ['pending_moderation', t('status_pending_moderation')], ['hidden', t('status_hidden')],
      ['published', t('status_published_review')], ['rejected', t('status_rejected')]],
  });
  const productBox = el('div', { id: 'reviews' });
  const serviceStatus = field(t('status'), {
    id: 'service-review-status', tag: 'select',
    options: [['pending_moderation', t('status_pending_moderation')], ['published', t('status_published_review')], ['rejected', t('status_rejected')]],
  });
  const serviceBox = el('div', { id: 'service-reviews' });

  const productQueue = () => api('GET', `/admin/reviews?limit=100${status.input.value ? `&status=${status.input.value}` : ''}`);
  const serviceQueue = () => api('GET', `/admin/service-reviews?limit=100&status=${serviceStatus.input.value}`);

  function renderProducts(page) {
    if (!page.reviews.length) {
      productBox.replaceChildren(el('p', {}, t('no_reviews')));
      return;
    }
    productBox.replaceChildren(el('div', { class: 'table-wrap' }, table(t('product_reviews'),
      [t('sku'), t('rating'), t('comment'), t('reports'), t('status'), t('created_at'), ''],
      page.reviews.map((r) => {
        const decided = (next) => until(productQueue, (p) => !p.reviews.some((x) => x.review_id === r.review_id && x.status === r.status))
          .then((p) => { if (p) renderProducts(p); notice(out, `${t('decided')}: ${r.sku} ${reviewStatus(next)}`, 'review-decided'); });
        const actions = decisionCell(r.review_id, r.sku,
          async () => { const w = await api('POST', `/admin/reviews/${r.review_id}/publish`, { body: {} }); await decided(w.status); },
          async (reason) => { const w = await api('POST', `/admin/reviews/${r.review_id}/reject`, { body: { reason } }); await decided(w.status); },
          { publish: 'data-publish', reject: 'data-reject', reason: 'review-reason' });
        return [r.sku, `${r.rating} ★`, r.comment, r.reports, reviewStatus(r.status), when(r.created_at), actions];
      }), { 'data-count': page.reviews.length })));
  }

  function renderServices(page) {
    if (!page.reviews.length) {
      serviceBox.replaceChildren(el('p', {}, t('no_reviews')));
      return;
    }
    serviceBox.replaceChildren(el('div', { class: 'table-wrap' }, table(t('provider_reviews'),
      [t('service_order'), t('rating'), t('status'), t('created_at'), ''],
      page.reviews.map((r) => {
        const id = r.service_order_id;
        const decided = (next) => until(serviceQueue, (p) => !p.reviews.some((x) => x.service_order_id === id && x.status === r.status))
          .then((p) => { if (p) renderServices(p); notice(out, `${t('decided')}: ${short(id)} ${reviewStatus(next)}`, 'review-decided'); });
        const actions = decisionCell(id, short(id),
          async () => { await api('POST', `/admin/service-orders/${id}/review/publish`, { body: {} }); await decided('published'); },
          async (reason) => { await api('POST', `/admin/service-orders/${id}/review/reject`, { body: { reason } }); await decided('rejected'); },
          { publish: 'data-publish-service', reject: 'data-reject-service', reason: 'service-review-reason' });
        return [el('code', {}, short(id)), `${r.rating} ★`, reviewStatus(r.status), when(r.reviewed_at), actions];
      }))));
  }

  status.input.addEventListener('change', () => attempt(out, async () => renderProducts(await productQueue())));
  serviceStatus.input.addEventListener('change', () => attempt(out, async () => renderServices(await serviceQueue())));
  main.append(out,
    section(t('product_reviews'), status, productBox),
    section(t('provider_reviews'), serviceStatus, serviceBox));
  const [products, services] = await Promise.all([productQueue(), serviceQueue()]);
  renderProducts(products);
  renderServices(services);
}

// --- booking refund requests --------------------------------------------------------

/** The fans' open refund requests of paid bookings, newest first. */
export async function bookingRefunds(main) {
  const out = el('div', { class: 'out', id: 'refund-out' });
  const box = el('div', { id: 'refund-requests' });
  const queue = () => api('GET', '/admin/bookings/refund-requests?limit=100');

  function render(page) {
    if (!page.refund_requests.length) {
      box.replaceChildren(el('p', { id: 'no-refund-requests' }, t('no_refund_requests')));
      return;
    }
    box.replaceChildren(el('div', { class: 'table-wrap' }, table(t('booking_refunds'),
      [t('booking'), t('quantity'), t('total'), t('reason'), t('requested_at'), ''],
      page.refund_requests.map((r) => {
        const id = r.booking_id;
        const reason = el('input', { type: 'text', maxlength: 500, id: `refund-reason-${id}`, 'aria-label': `${t('reason')} ${short(id)}` });
        const cellOut = el('span', {});
        async function decide(path, body) {
          const booking = await api('POST', `/admin/bookings/${id}/refund-request/${path}`, { body });
          const after = await until(queue, (p) => !p.refund_requests.some((x) => x.booking_id === id));
          if (after) render(after);
          notice(out, `${t('decided')}: ${short(id)} ${statusWord(booking.status)}`, 'refund-decided');
        }
        const approve = el('button', { type: 'button', 'data-approve-refund': id }, t('approve'));
        approve.addEventListener('click', () => attempt(cellOut, () => decide('approve', {})));
        const reject = el('button', { type: 'button', class: 'secondary', 'data-reject-refund': id }, t('reject'));
        reject.addEventListener('click', () => attempt(cellOut, () => decide('reject', { reason: reason.value.trim() })));
        return [el('code', {}, short(id)), r.quantity, money(r.total_amount, r.currency), r.reason || '', when(r.requested_at),
          el('span', {}, reason, ' ', approve, ' ', reject, cellOut)];
      }))));
  }

  main.append(out, box);
  render(await queue());
}
