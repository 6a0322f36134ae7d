// The storefront's reviews and after-sales: a product's rating and published reviews (with
// reports), reviewing and following up the lines of a delivered order, confirming receipt,
// after-sales requests (refund, return, exchange) with withdrawal and the return parcel,
// and a fan's refund request of a paid booking.
import { api, attempt, el, field, money, poll, section, session, t, when } from './common.js';
import { addWords, statusWord } from './i18n.js';

addWords({
  rating_average: ['平均评分', 'Average rating'],
  rating_total: ['评价数', 'Reviews'],
  rating_distribution: ['评分分布', 'Rating distribution'],
  stars: ['星', 'stars'],
  no_reviews: ['暂无评价', 'No reviews yet'],
  more_reviews: ['更多评价', 'More reviews'],
  report_review: ['举报', 'Report'],
  review_reported: ['已举报', 'Reported'],
  review_follow_up: ['追评', 'Follow-up'],
  review_images: ['图片', 'Pictures'],
  review_image: ['图片', 'Picture'],
  review_this: ['评价此商品', 'Review this item'],
  review_comment: ['评价内容', 'Comment'],
  review_sent: ['评价已提交', 'Review sent'],
  review_state: ['评价状态', 'Review status'],
  review_status_published: ['已发布', 'published'],
  review_status_pending_moderation: ['待审核', 'waiting for moderation'],
  review_status_rejected: ['未通过', 'rejected'],
  review_status_hidden: ['已隐藏', 'hidden'],
  already_reviewed: ['此商品已评价', 'This item was reviewed already'],
  write_follow_up: ['写追评', 'Write a follow-up'],
  follow_up_sent: ['追评已提交', 'Follow-up sent'],
  order_reviews: ['评价商品', 'Review the items'],
  aftersales: ['售后', 'After-sales'],
  aftersales_request: ['申请售后', 'Ask for after-sales service'],
  aftersales_requests: ['售后申请', 'After-sales requests'],
  no_aftersales: ['暂无售后申请', 'No after-sales requests'],
  kind_refund_only: ['仅退款', 'Refund only'],
  kind_return_refund: ['退货退款', 'Return and refund'],
  kind_exchange: ['换货', 'Exchange'],
  refund_amount: ['退款金额', 'Refund'],
  withdraw: ['撤销', 'Withdraw'],
  withdrawn_note: ['已撤销', 'Withdrawn'],
  return_shipment: ['寄回商品', 'Send the goods back'],
  tracking_no: ['运单号', 'Tracking number'],
  return_sent: ['已寄回', 'Sent back'],
  choose_units: ['请至少选择一件商品', 'Choose at least one unit'],
  rejection_reason: ['拒绝原因', 'Why it was rejected'],
  refund_request: ['申请退款', 'Request a refund'],
  refund_request_state: ['退款申请', 'Refund request'],
  receipt_confirmed: ['已确认收货', 'Receipt confirmed'],
});

/** A review status in words (reviews have their own: "published" is not a service order's). */
function reviewStatus(status) {
  const key = `review_status_${status}`;
  const word = t(key);
  return word === key ? statusWord(status) : word;
}

const REVIEWS = 'ordo.reviews';

/** The reviews this browser wrote, by `order/sku`: {review_id, status, followed_up}. */
function keptReviews() {
  try {
    return JSON.parse(localStorage.getItem(REVIEWS) || '{}');
  } catch {
    return {};
  }
}

function keepReview(orderId, sku, value) {
  const all = keptReviews();
  all[`${orderId}/${sku}`] = { ...(all[`${orderId}/${sku}`] || {}), ...value };
  localStorage.setItem(REVIEWS, JSON.stringify(all));
}

function stars(rating) {
  const n = Math.max(0, Math.min(5, Number(rating) || 0));
  return `${'★'.repeat(n)}${'☆'.repeat(5 - n)}`;
}

// --- product page --------------------------------------------------------------------

function ratingBlock(rating) {
  const distribution = rating.rating_distribution || {};
  return el('div', { class: 'card', id: 'product-rating' },
    el('p', {}, `${t('rating_average')}: `,
      el('strong', { id: 'rating-average' }, rating.average_rating === null || rating.average_rating === undefined ? '-' : String(rating.average_rating)),
      ' · ', `${t('rating_total')}: `, el('span', { id: 'rating-total' }, String(rating.total_reviews))),
    el('ul', { id: 'rating-distribution', 'aria-label': t('rating_distribution') },
      ...[5, 4, 3, 2, 1].map((n) => el('li', { 'data-stars': n }, `${n} ${t('stars')}: ${distribution[String(n)] || 0}`))));
}

function reviewItem(review, out) {
  const item = el('li', { 'data-review': review.review_id },
    el('p', {}, el('span', { 'aria-hidden': 'true' }, stars(review.rating)), ' ',
      el('span', { class: 'review-rating' }, `${t('rating')} ${review.rating}/5`), ' ',
      el('span', { class: 'muted' }, when(review.created_at))),
    review.comment ? el('p', { class: 'comment' }, review.comment) : '',
    review.follow_up ? el('p', { class: 'follow-up' }, el('strong', {}, `${t('review_follow_up')}: `), review.follow_up) : '');
  if (review.images && review.images.length) {
    item.append(el('p', {}, `${t('review_images')}: `,
      ...review.images.map((url, i) => [i ? ' ' : '', el('a', { href: url, rel: 'noopener noreferrer' }, `${t('review_image')} ${i + 1}`)])));
  }
  if (session()) {
    const report = el('button', { type: 'button', class: 'secondary', 'data-report': review.review_id }, t('report_review'));
    report.addEventListener('click', () => attempt(out, async () => {
      report.disabled = true;
      try {
        await api('POST', `/reviews/${review.review_id}/report`, { body: {} });
      } catch (err) {
        report.disabled = false;
        throw err;
      }
      report.replaceWith(el('span', { class: 'badge reported', 'data-reported': review.review_id }, t('review_reported')));
    }));
    item.append(report);
  }
  return item;
}

/**
 * The rating and the published reviews of `sku`, newest first, with a button for the next
 * page. The rating is read again every few seconds; when its count changes the list is too.
 */
export async function productReviews(main, ctx, sku) {
  const path = `/products/${encodeURIComponent(sku)}`;
  const ratingBox = el('div', { 'aria-live': 'polite' });
  const list = el('ul', { id: 'product-reviews', class: 'entries' });
  const out = el('div', { class: 'out' });
  const more = el('button', { type: 'button', class: 'secondary', id: 'reviews-more', hidden: true }, t('more_reviews'));
  let cursor = null;
  let total = null;
  async function page(first) {
    const params = new URLSearchParams({ limit: '10' });
    if (!first && cursor) params.set('cursor', cursor);
    const answer = await api('GET', `${path}/reviews?${params}`);
    if (first) list.replaceChildren();
    list.append(...answer.reviews.map((r) => reviewItem(r, out)));
    if (!list.childElementCount) list.append(el('li', { class: 'empty' }, t('no_reviews')));
    cursor = answer.next_cursor || null;
    more.hidden = !cursor;
  }
  async function rating() {
    const answer = await api('GET', `${path}/rating`);
    ratingBox.replaceChildren(ratingBlock(answer));
    if (total !== null && total !== answer.total_reviews) await page(true);
    total = answer.total_reviews;
  }
  more.addEventListener('click', () => attempt(out, () => page(false)));
  main.append(section(t('rating'), ratingBox), section(t('reviews'), list, more, out));
  await Promise.all([rating(), page(true)]);
  const timer = setInterval(() => rating().catch(() => {}), 3000);
  ctx.onLeave(() => clearInterval(timer));
}

// --- order page ----------------------------------------------------------------------

function reviewForm(order, line, after) {
  const sku = line.sku;
  const rating = field(t('rating'), {
    tag: 'select', id: `review-rating-${sku}`,
    options: [5, 4, 3, 2, 1].map((n) => [String(n), `${n} ${t('stars')}`]),
  });
  const comment = field(t('review_comment'), { tag: 'textarea', id: `review-comment-${sku}`, maxlength: 2000 });
  const out = el('div', { class: 'out' });
  const form = el('form', { class: 'card', 'data-review-sku': sku, 'aria-label': `${t('review_this')} ${sku}` },
    el('h3', {}, `${t('review_this')}: ${sku}`), rating, comment,
    el('button', { type: 'submit', id: `review-submit-${sku}` }, t('submit')), out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      try {
        const written = await api('POST', '/reviews', {
          body: { order_id: order.order_id, sku, rating: Number(rating.input.value), comment: comment.input.value.trim() },
        });
        keepReview(order.order_id, sku, { review_id: written.review_id, status: written.status });
      } catch (err) {
        if (err.code !== 'already_reviewed') throw err;
        keepReview(order.order_id, sku, { already: true });
      }
      after();
    });
  });
  return form;
}

function reviewed(order, line, kept, after) {
  const sku = line.sku;
  const box = el('div', { class: 'card', 'data-reviewed-sku': sku }, el('h3', {}, `${t('reviews')}: ${sku}`));
  if (!kept.review_id) {
    box.append(el('p', { id: `review-status-${sku}` }, t('already_reviewed')));
    return box;
  }
  box.append(el('p', {}, `${t('review_state')}: `,
    el('strong', { id: `review-status-${sku}`, 'data-status': kept.status }, reviewStatus(kept.status))));
  if (kept.followed_up) {
    box.append(el('p', { class: 'notice ok', id: `followed-up-${sku}` }, t('follow_up_sent')));
    return box;
  }
  const comment = field(t('write_follow_up'), { tag: 'textarea', id: `follow-up-comment-${sku}`, required: true, maxlength: 2000 });
  const out = el('div', { class: 'out' });
  const form = el('form', { 'aria-label': `${t('write_follow_up')} ${sku}`, id: `follow-up-${sku}` }, comment,
    el('button', { type: 'submit', id: `follow-up-submit-${sku}` }, t('submit')), out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const written = await api('POST', `/reviews/${kept.review_id}/follow-up`, { body: { comment: comment.input.value.trim() } });
      keepReview(order.order_id, sku, { status: written.status, followed_up: true });
      after();
    });
  });
  box.append(form);
  return box;
}

function reviewsOf(order) {
  const box = el('div', { id: 'order-reviews' });
  function render() {
    const kept = keptReviews();
    box.replaceChildren(...order.items.map((line) => {
      const mine = kept[`${order.order_id}/${line.sku}`];
      return mine ? reviewed(order, line, mine, render) : reviewForm(order, line, render);
    }));
  }
  render();
  return section(t('order_reviews'), box);
}

function returnForm(request, after) {
  const id = request.aftersale_id;
  const carrier = field(t('carrier'), { id: `return-carrier-${id.slice(0, 8)}`, required: true, maxlength: 32, pattern: '[a-z0-9_\\-]{1,32}' });
  const tracking = field(t('tracking_no'), { id: `return-tracking-${id.slice(0, 8)}`, required: true, maxlength: 64, pattern: '[A-Za-z0-9\\-]{1,64}' });
  const out = el('div', { class: 'out' });
  const form = el('form', { class: 'row', 'data-return': id, 'aria-label': t('return_shipment') }, carrier, tracking,
    el('button', { type: 'submit' }, t('return_shipment')), out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      await api('POST', `/aftersales/${id}/return-shipment`, {
        body: { carrier: carrier.input.value.trim(), tracking_no: tracking.input.value.trim() },
      });
      await after((r) => r.aftersale_id === id && !!r.return_shipment);
    });
  });
  return form;
}

function requestItem(request, after) {
  const out = el('div', { class: 'out' });
  const item = el('li', { class: 'card', 'data-aftersale': request.aftersale_id },
    el('p', {}, el('strong', {}, t(`kind_${request.kind}`)), ' · ', `${t('status')}: `,
      el('strong', { class: 'aftersale-status', 'data-status': request.status }, statusWord(request.status))),
    el('p', {}, request.lines.map((l) => `${l.sku} × ${l.quantity}`).join(', '),
      request.refund_amount ? ` · ${t('refund_amount')}: ${money(request.refund_amount, request.currency)}` : ''),
    el('p', { class: 'muted' }, `${t('reason')}: ${request.reason} · ${when(request.created_at)}`));
  if (request.rejection_reason) item.append(el('p', {}, `${t('rejection_reason')}: ${request.rejection_reason}`));
  if (request.return_shipment) {
    item.append(el('p', {}, `${t('return_sent')}: ${request.return_shipment.carrier} ${request.return_shipment.tracking_no}`));
  }
  if (request.status === 'requested') {
    const withdraw = el('button', { type: 'button', class: 'secondary', 'data-withdraw': request.aftersale_id }, t('withdraw'));
    withdraw.addEventListener('click', () => attempt(out, async () => {
      withdraw.disabled = true;
      await api('POST', `/aftersales/${request.aftersale_id}/withdraw`, { body: {} });
      await after((r) => r.aftersale_id === request.aftersale_id && r.status === 'withdrawn');
    }));
    item.append(withdraw);
  }
  if (request.status === 'awaiting_return' && !request.return_shipment) item.append(returnForm(request, after));
  item.append(out);
  return item;
}

let aftersalesTimer = null;

function aftersalesOf(order, ctx) {
  const list = el('ul', { id: 'aftersales-list', class: 'entries', 'aria-live': 'polite' });
  let shown = null;
  async function load() {
    const page = await api('GET', '/aftersales?limit=100');
    const mine = page.aftersales.filter((r) => r.order_id === order.order_id);
    // Drawn again only when a request changed, so that a form being filled in stays.
    const seen = JSON.stringify(mine.map((r) => [r.aftersale_id, r.status, !!r.return_shipment]));
    if (seen !== shown) {
      shown = seen;
      list.replaceChildren(...mine.map((r) => requestItem(r, refresh)));
      if (!mine.length) list.append(el('li', { class: 'empty' }, t('no_aftersales')));
    }
    return mine;
  }
  /** Reads the requests until one satisfies `seen` (the read model follows the writes). */
  async function refresh(seen) {
    await poll(async () => (await load()).some(seen), { ms: 300, tries: 40 });
  }
  const kind = field(t('kind'), {
    tag: 'select', id: 'aftersale-kind',
    options: ['refund_only', 'return_refund', 'exchange'].map((k) => [k, t(`kind_${k}`)]),
  });
  if (order.status !== 'paid') kind.input.value = 'return_refund';
  const quantities = order.items.map((line) => [line.sku, field(`${t('quantity')} ${line.sku}`, {
    type: 'number', id: `aftersale-quantity-${line.sku}`, min: 0, max: line.quantity, value: 0,
  })]);
  const reason = field(t('reason'), { tag: 'textarea', id: 'aftersale-reason', required: true, maxlength: 500 });
  const out = el('div', { class: 'out', id: 'aftersale-result' });
  const form = el('form', { class: 'card', id: 'aftersale-form', 'aria-label': t('aftersales_request') },
    el('h3', {}, t('aftersales_request')), kind, el('div', { class: 'row' }, ...quantities.map(([, f]) => f)), reason,
    el('button', { type: 'submit', id: 'aftersale-submit' }, t('submit')), out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const lines = quantities.map(([sku, f]) => ({ sku, quantity: Number(f.input.value || 0) })).filter((l) => l.quantity > 0);
      if (!lines.length) {
        out.replaceChildren(el('p', { class: 'notice error', role: 'alert' }, t('choose_units')));
        return;
      }
      const accepted = await api('POST', '/aftersales', {
        body: { order_id: order.order_id, kind: kind.input.value, lines, reason: reason.input.value.trim() },
      });
      reason.input.value = '';
      quantities.forEach(([, f]) => { f.input.value = 0; });
      await refresh((r) => r.aftersale_id === accepted.aftersale_id);
    });
  });
  const listOut = el('div', { class: 'out' });
  attempt(listOut, load);
  // Decisions of the shop arrive while the page is open.
  clearInterval(aftersalesTimer);
  aftersalesTimer = setInterval(() => load().catch(() => {}), 3000);
  const timer = aftersalesTimer;
  ctx.onLeave(() => clearInterval(timer));
  return section(t('aftersales'), form, el('h3', {}, t('aftersales_requests')), list, listOut);
}

/**
 * What the order page adds: confirming receipt of a shipped or delivered order, reviews
 * of the lines of a delivered or completed one, and its after-sales requests (read again
 * every few seconds while the page is open). `reload` renders the order again.
 */
export function orderAftersales(order, ctx, out, reload) {
  const parts = [];
  if (order.status === 'shipped' || order.status === 'delivered') {
    const confirm = el('button', { type: 'button', id: 'confirm-receipt' }, t('confirm_receipt'));
    confirm.addEventListener('click', () => attempt(out, async () => {
      confirm.disabled = true;
      await api('POST', `/orders/${order.order_id}/confirm-receipt`, { body: {} });
      await reload();
    }));
    parts.push(el('div', { class: 'row' }, confirm));
  }
  if (order.status === 'completed') parts.push(el('p', { class: 'notice ok', id: 'receipt-confirmed' }, t('receipt_confirmed')));
  if (order.status === 'delivered' || order.status === 'completed') parts.push(reviewsOf(order));
  if (['paid', 'shipped', 'delivered', 'completed', 'refunded'].includes(order.status)) parts.push(aftersalesOf(order, ctx));
  return parts;
}

// --- booking page --------------------------------------------------------------------

/** The refund request of a paid booking: ask with a reason, see where it stands, withdraw. */
export function bookingRefund(booking, out, reload) {
  const request = booking.refund_request;
  if (booking.status !== 'paid' && !request) return '';
  const box = el('div', { id: 'refund-request' });
  if (request) {
    box.append(el('p', {}, `${t('status')}: `,
      el('strong', { id: 'refund-status', 'data-status': request.status }, statusWord(request.status))),
    el('p', {}, `${t('reason')}: ${request.reason}`));
    if (request.rejection_reason) box.append(el('p', { id: 'refund-rejection' }, `${t('rejection_reason')}: ${request.rejection_reason}`));
  }
  if (request && request.status === 'requested') {
    const withdraw = el('button', { type: 'button', class: 'secondary', id: 'refund-withdraw' }, t('withdraw'));
    withdraw.addEventListener('click', () => attempt(out, async () => {
      withdraw.disabled = true;
      await api('POST', `/bookings/${booking.booking_id}/refund-request/withdraw`, { body: {} });
      await reload();
    }));
    box.append(withdraw);
  } else if (booking.status === 'paid' && (!request || request.status === 'withdrawn')) {
    const reason = field(t('reason'), { tag: 'textarea', id: 'refund-reason', required: true, maxlength: 500 });
    const form = el('form', { id: 'refund-form', 'aria-label': t('refund_request') }, reason,
      el('button', { type: 'submit', id: 'refund-submit' }, t('refund_request')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      attempt(out, async () => {
        await api('POST', `/bookings/${booking.booking_id}/refund-request`, { body: { reason: reason.input.value.trim() } });
        await reload();
      });
    });
    box.append(form);
  }
  return section(t('refund_request_state'), box);
}
