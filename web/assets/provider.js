// The provider console at `/provider`: profile, skills and areas, certifications and the
// verification status; matching orders arriving live, accepting them (a lost race is told
// as such); progress and completion; payouts, reviews and rating (the "my rating" view:
// the mean, the count and distribution of the reviews, each aspect's mean).
import {
  api, attempt, el, eventStream, field, idempotencyKey, loginForm, money, registerForm, say,
  section, session, start, t, table, when,
} from './common.js';
import { addWords, statusWord } from './i18n.js';

addWords({
  my_rating: ['我的评分与评价', 'My rating and reviews'],
  rating_average: ['平均评分', 'Average rating'],
  rating_total: ['评价数', 'Reviews'],
  rating_distribution: ['评分分布', 'Rating distribution'],
  stars: ['星', 'stars'],
  professionalism: ['专业程度', 'Professionalism'],
  attitude: ['服务态度', 'Attitude'],
  punctuality: ['准时程度', 'Punctuality'],
  completed_orders: ['完成订单', 'Completed orders'],
  not_rated: ['暂无评分', 'not rated yet'],
});

function isProvider(s) {
  return !!s && s.role === 'provider';
}

function guard(main) {
  const current = session();
  if (!current) {
    main.append(el('p', { class: 'notice' }, t('need_login'), ' ', el('a', { href: '#/login' }, t('login'))));
    return true;
  }
  if (current.role !== 'provider') {
    main.append(el('p', { class: 'notice error' }, t('provider_only')));
    return true;
  }
  return false;
}

async function profile(main) {
  main.append(el('h1', {}, t('profile')));
  if (guard(main)) return;
  const me = session();
  const shown = await api('GET', `/providers/${me.user_id}`).catch(() => null);
  const status = el('p', { id: 'verification' }, `${t('verification')}: `,
    el('strong', { id: 'verification-status', 'data-status': shown ? shown.verification_status : 'unverified' },
      statusWord(shown ? shown.verification_status : 'unverified')));
  const rating = shown && shown.rating
    ? el('p', { id: 'rating' }, `${t('rating')}: ${shown.rating.average_rating ?? '-'} (${shown.rating.total_reviews} ${t('reviews')}), ${t('complete')}: ${shown.completed_orders}`)
    : '';
  const name = field(t('full_name'), { id: 'p-name', required: true, maxlength: 100 });
  const phone = field(t('phone'), { id: 'p-phone', required: true, minlength: 5, maxlength: 20, type: 'tel' });
  const skills = field(`${t('skills')} (, )`, { id: 'p-skills', required: true, value: shown ? shown.skills.join(', ') : '' });
  const areas = field(`${t('areas')} (, )`, { id: 'p-areas', required: true, value: shown ? shown.service_areas.join(', ') : '' });
  const bio = field(t('bio'), { id: 'p-bio', tag: 'textarea', maxlength: 2000 });
  const out = el('div', { class: 'out' });
  const split = (text) => text.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean);
  const form = el('form', { class: 'card', 'aria-label': t('profile') }, name, phone, skills, areas, bio,
    el('button', { type: 'submit', id: 'p-save' }, t('save')), out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const saved = await api('PUT', '/providers/me/profile', {
        body: { full_name: name.input.value.trim(), phone: phone.input.value.trim(), skills: split(skills.input.value), service_areas: split(areas.input.value), bio: bio.input.value },
      });
      out.replaceChildren(el('p', { class: 'notice ok', id: 'p-saved' }, t('done')));
      status.querySelector('strong').textContent = statusWord(saved.verification_status);
    });
  });
  const certName = field(t('certifications'), { id: 'c-name', required: true, maxlength: 200 });
  const certUrl = field('URL', { id: 'c-url', type: 'url', required: true, maxlength: 2000 });
  const certOut = el('div', { class: 'out' });
  const cert = el('form', { class: 'card', 'aria-label': t('certifications') }, certName, certUrl,
    el('button', { type: 'submit', id: 'c-submit' }, t('submit')), certOut);
  cert.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(certOut, async () => {
      const answer = await api('POST', '/providers/me/certifications', { body: { name: certName.input.value.trim(), file_url: certUrl.input.value.trim() } });
      certOut.replaceChildren(el('p', { class: 'notice ok' }, `${t('done')}: ${statusWord(answer.verification_status)}`));
    });
  });
  main.append(status, rating, section(t('profile'), form), section(t('certifications'), cert));
}

async function matching(main, ctx) {
  main.append(el('h1', {}, t('matching_orders')));
  if (guard(main)) return;
  const list = el('ul', { class: 'grid', id: 'matching', 'aria-live': 'polite' });
  const out = el('div', { class: 'out', id: 'accept-result' });
  async function load() {
    const page = await api('GET', '/providers/me/matching-orders');
    const known = new Set([...list.querySelectorAll('[data-order]')].map((n) => n.dataset.order));
    const fresh = new Set(page.service_orders.map((o) => o.order_id));
    for (const node of list.querySelectorAll('[data-order]')) {
      if (!fresh.has(node.dataset.order) && !node.dataset.kept) node.remove();
    }
    for (const o of page.service_orders.filter((x) => !known.has(x.order_id))) {
      const accept = el('button', { type: 'button', 'data-accept': o.order_id }, t('accept'));
      const item = el('li', { 'data-order': o.order_id },
        el('h2', {}, o.title), el('p', {}, `${o.service_type} · ${o.location}`),
        el('p', { class: 'price' }, money(o.price, o.currency)), accept);
      accept.addEventListener('click', () => attempt(out, async () => {
        accept.disabled = true;
        item.dataset.kept = '1';
        try {
          await api('POST', `/service-orders/${o.order_id}/accept`, { body: {}, headers: { 'idempotency-key': idempotencyKey() } });
          item.append(el('p', { class: 'notice ok', 'data-outcome': 'won' }, t('accepted'), ' ', el('a', { href: `#/orders/${o.order_id}` }, t('order'))));
        } catch (err) {
          if (err.code === 'already_accepted') {
            item.append(el('p', { class: 'notice error', 'data-outcome': 'lost', role: 'alert' }, t('race_lost')));
            return;
          }
          accept.disabled = false;
          throw err;
        }
      }));
      list.append(item);
    }
    if (!list.querySelector('[data-order]')) {
      if (!list.querySelector('.empty')) list.append(el('li', { class: 'empty' }, t('no_orders')));
    } else {
      list.querySelectorAll('.empty').forEach((n) => n.remove());
    }
  }
  main.append(list, out);
  await load();
  // New orders arrive live: announced over the notification stream, and looked for again.
  const stop = eventStream('/notifications/stream', (entry) => {
    if (entry.kind === 'service_order_available') { say(entry.title || t('matching_orders')); load().catch(() => {}); }
  });
  const timer = setInterval(() => load().catch(() => {}), 3000);
  ctx.onLeave(() => { stop(); clearInterval(timer); });
}

async function myOrders(main) {
  main.append(el('h1', {}, t('my_orders')));
  if (guard(main)) return;
  const page = await api('GET', '/service-orders?limit=50', { headers: { prefer: 'wait=5' } });
  main.append(page.service_orders.length
    ? el('div', { class: 'table-wrap' }, table(t('my_orders'), [t('title'), t('status'), t('price')],
      page.service_orders.map((o) => [el('a', { href: `#/orders/${o.order_id}` }, o.title), statusWord(o.status), money(o.price, o.currency)]), { id: 'my-orders' }))
    : el('p', {}, t('no_orders')));
}

async function orderPage(main, _ctx, id) {
  if (guard(main)) return;
  const box = el('div', { id: 'service-order' });
  const out = el('div', { class: 'out' });
  main.append(box, out);
  async function load() {
    const o = await api('GET', `/service-orders/${id}`, { headers: { prefer: 'wait=5' } });
    const actions = [];
    for (const [action, key, when_] of [['start', 'start', ['paid']], ['complete', 'complete', ['in_progress']]]) {
      if (when_.includes(o.status)) {
        const button = el('button', { type: 'button', id: `so-${action}` }, t(key));
        button.addEventListener('click', () => attempt(out, async () => {
          await api('POST', `/service-orders/${id}/${action}`, { body: {} });
          await load();
        }));
        actions.push(button);
      }
    }
    box.replaceChildren(el('h1', {}, o.title),
      el('p', {}, `${t('status')}: `, el('strong', { id: 'so-status', 'data-status': o.status }, statusWord(o.status))),
      el('p', {}, o.description || ''), el('p', {}, `${o.service_type} · ${o.location} · ${o.address || ''}`),
      el('p', { class: 'price' }, money(o.price, o.currency)),
      o.payout ? el('p', { id: 'payout' }, `${t('payouts')}: ${money(o.payout.amount, o.payout.currency)}`) : '',
      o.review ? el('p', { id: 'review' }, `${t('reviews')}: ${o.review.rating}/5 ${o.review.comment || ''}`) : '',
      el('div', { class: 'row' }, ...actions));
  }
  await load();
}

async function payouts(main) {
  main.append(el('h1', {}, t('payouts')));
  if (guard(main)) return;
  const page = await api('GET', '/service-orders?limit=100');
  const rows = [];
  for (const o of page.service_orders.filter((x) => x.status === 'completed' || x.status === 'confirmed')) {
    const full = await api('GET', `/service-orders/${o.order_id}`).catch(() => null);
    if (full && full.payout) rows.push([o.title, money(full.payout.amount, full.payout.currency), full.review ? `${full.review.rating}/5` : '']);
  }
  main.append(rows.length ? el('div', { class: 'table-wrap' }, table(t('payouts'), [t('title'), t('payouts'), t('rating')], rows)) : el('p', {}, t('none')));
}

/** A mean rating, or words saying there is none yet. */
function mean(value) {
  return value === null || value === undefined ? t('not_rated') : String(value);
}

async function myRating(main) {
  main.append(el('h1', {}, t('my_rating')));
  if (guard(main)) return;
  // Before the profile is saved there is no public profile, and so no rating yet.
  const shown = await api('GET', `/providers/${session().user_id}`)
    .catch((err) => { if (err.status === 404) return { rating: {}, completed_orders: 0 }; throw err; });
  const rating = shown.rating || {};
  const distribution = rating.rating_distribution || {};
  const facts = [
    ['rating_average', 'pr-average', mean(rating.average_rating)],
    ['rating_total', 'pr-total', String(rating.total_reviews ?? 0)],
    ['professionalism', 'pr-professionalism', mean(rating.professionalism)],
    ['attitude', 'pr-attitude', mean(rating.attitude)],
    ['punctuality', 'pr-punctuality', mean(rating.punctuality)],
    ['completed_orders', 'pr-completed', String(rating.completed_orders ?? shown.completed_orders ?? 0)],
  ];
  main.append(el('div', { class: 'card', id: 'provider-rating' },
    el('dl', { class: 'totals' }, ...facts.flatMap(([key, id, value]) => [el('dt', {}, t(key)), el('dd', { id }, value)])),
    section(t('rating_distribution'), el('ul', { id: 'pr-distribution' },
      ...[5, 4, 3, 2, 1].map((n) => el('li', { 'data-stars': n }, `${n} ${t('stars')}: ${distribution[String(n)] || 0}`))))));
}

function login(main) {
  main.append(loginForm(async () => { location.hash = '#/matching'; }),
    registerForm(async () => { location.hash = '#/'; }, 'provider'));
}

start({
  titleKey: 'provider_title',
  links: [['#/', 'profile', isProvider], ['#/matching', 'matching_orders', isProvider], ['#/orders', 'my_orders', isProvider], ['#/payouts', 'payouts', isProvider], ['#/rating', 'my_rating', isProvider]],
  routes: {
    '#/': profile,
    '#/matching': matching,
    '#/orders': myOrders,
    '#/orders/:id': orderPage,
    '#/payouts': payouts,
    '#/rating': myRating,
    '#/login': login,
  },
});
