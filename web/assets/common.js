// What every console shares: the session (tokens kept in sessionStorage, refreshed on 401),
// the API client (problem+json shown in words, 429 with a retry), DOM helpers, the page's
// frame (skip link, navigation, language switch, live status) and a hash router.
import { t, lang, setLang } from './i18n.js';

export { t, lang, setLang };

const SESSION = 'ordo.session';

/** The logged-in session: {access_token, refresh_token, user_id, email, role} or null. */
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) || 'null');
  } catch {
    return null;
  }
}

function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch {
    return {};
  }
}

/** Keeps the tokens of a login, registration or refresh. */
export function keepSession(answer) {
  const c = claims(answer.access_token);
  const value = {
    access_token: answer.access_token,
    refresh_token: answer.refresh_token,
    user_id: answer.user_id || c.sub,
    email: c.email,
    role: c.role,
  };
  sessionStorage.setItem(SESSION, JSON.stringify(value));
  return value;
}

export function clearSession() {
  sessionStorage.removeItem(SESSION);
}

/** An answer of the API that is not a success, as a person reads it. */
export class Problem extends Error {
  constructor(status, body, retryAfter) {
    const title = (body && body.title) || (status === 0 ? t('network_error') : t('error'));
    super(title);
    this.status = status;
    this.title = title;
    this.detail = body && body.detail;
    this.type = (body && body.type) || '';
    this.code = this.type.replace('urn:ordo:problem:', '');
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

let refreshing = null;

async function refresh() {
  const current = session();
  if (!current || !current.refresh_token) return false;
  if (!refreshing) {
    refreshing = (async () => {
      const response = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
      if (!response.ok) return false;
      keepSession(await response.json());
      return true;
    })().finally(() => {
      setTimeout(() => { refreshing = null; }, 0);
    });
  }
  return refreshing;
}

/**
 * Calls the API: `path` under /api/v1, JSON `body`, extra `headers`. Answers the JSON body
 * (null when empty); throws a Problem otherwise. An expired access token is refreshed once;
 * when that fails the session ends and the login view is shown.
 */
export async function api(method, path, { body, headers = {}, raw = false } = {}, retried = false) {
  const current = session();
  const all = { accept: 'application/json, application/problem+json', ...headers };
  if (current) all.authorization = `Bearer ${current.access_token}`;
  if (body !== undefined) all['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers: all,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new Problem(0, null);
  }
  if (response.status === 401 && current && !retried && !path.startsWith('/auth/')) {
    if (await refresh()) return api(method, path, { body, headers, raw }, true);
    clearSession();
    document.dispatchEvent(new CustomEvent('ordo:expired'));
  }
  if (raw && response.ok) return response;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const retry = Number(response.headers.get('retry-after') || 0);
    throw new Problem(response.status, parsed, retry);
  }
  return parsed;
}

/** Makes an element: `el('button', {class: 'x', onclick: f}, 'text', child...)`. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (value === true) {
      node.setAttribute(name, '');
    } else {
      node.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let fieldCount = 0;
/** A labelled input: answers the wrapper; the input is `.input` of it. */
export function field(label, attributes = {}) {
  const id = attributes.id || `f${++fieldCount}`;
  const input = attributes.tag === 'select'
    ? el('select', { ...attributes, tag: undefined, options: undefined, id },
      ...(attributes.options || []).map(([value, text]) => el('option', { value }, text)))
    : attributes.tag === 'textarea'
      ? el('textarea', { ...attributes, tag: undefined, id })
      : el('input', { type: 'text', ...attributes, id });
  const wrapper = el('div', { class: 'field' }, el('label', { for: id }, label), input);
  wrapper.input = input;
  return wrapper;
}

/** Money in minor units, in the page's language. */
export function money(amount, currency) {
  if (amount === undefined || amount === null) return '';
  try {
    return new Intl.NumberFormat(lang() === 'en' ? 'en' : 'zh-CN', {
      style: 'currency',
      currency: currency || 'CNY',
    }).format(amount / 100);
  } catch {
    return `${(amount / 100).toFixed(2)} ${currency || ''}`;
  }
}

export function when(text) {
  if (!text) return '';
  return new Date(text).toLocaleString(lang() === 'en' ? 'en' : 'zh-CN');
}

/** A fresh key for a command that must not be applied twice. */
export function idempotencyKey() {
  return crypto.randomUUID();
}

/** Says something in the live status region (read out by screen readers). */
export function say(message, kind = 'info') {
  const region = document.getElementById('status');
  if (!region) return;
  region.replaceChildren(el('p', { class: `notice ${kind}` }, message));
}

/**
 * Shows a failure where a person sees it: the problem's title (and detail) in `target` (or
 * the status region); a 429 with a button to retry `again` after the wait.
 */
export function showProblem(problem, target, again) {
  const box = el('div', { class: 'problem', role: 'alert', 'data-code': problem.code || '' });
  box.append(el('strong', {}, problem.title || t('error')));
  if (problem.detail) box.append(el('span', { class: 'detail' }, ` ${problem.detail}`));
  if (problem.status === 429) {
    const seconds = problem.retryAfter || 1;
    const button = el('button', { type: 'button', disabled: true }, `${t('retry')} (${seconds})`);
    box.append(el('p', {}, `${t('retry_in')} ${seconds}`), button);
    let left = seconds;
    const timer = setInterval(() => {
      left -= 1;
      button.textContent = left > 0 ? `${t('retry')} (${left})` : t('retry');
      if (left <= 0) {
        clearInterval(timer);
        button.disabled = false;
      }
    }, 1000);
    button.addEventListener('click', () => { box.remove(); if (again) again(); });
  }
  (target || document.getElementById('status')).replaceChildren(box);
  return box;
}

/** Runs `work`; a Problem it throws is shown in `target`. */
export async function attempt(target, work) {
  try {
    if (target) target.replaceChildren();
    return await work();
  } catch (err) {
    if (err instanceof Problem) {
      showProblem(err, target, () => attempt(target, work));
      return undefined;
    }
    throw err;
  }
}

/** Polls `check` every `ms` until it answers a truthy value or `tries` run out. */
export async function poll(check, { ms = 500, tries = 40 } = {}) {
  for (let i = 0; i < tries; i += 1) {
    const value = await check();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
  return null;
}

/**
 * The frame of a console: title, navigation links [[hash, key]...], the language switch,
 * who is logged in, and the routes {pattern: render(main, ...params)}. Renders the route
 * of the location's hash into <main>, again on each change.
 */
export function start({ titleKey, links, routes, loginHash = '#/login', onSession }) {
  const header = document.getElementById('top');
  const main = document.getElementById('main');
  let stop = [];

  function renderHeader() {
    document.title = t(titleKey);
    document.documentElement.lang = lang() === 'en' ? 'en' : 'zh-CN';
    const current = session();
    const nav = el('nav', { 'aria-label': t('main_nav') },
      el('ul', {}, ...links.filter(([, , needs]) => !needs || needs(current))
        .map(([hash, key]) => el('li', {}, el('a', { href: hash, id: `nav-${key}` }, t(key))))));
    const who = current
      ? el('span', { class: 'who' }, el('span', { id: 'who' }, `${t('logged_in_as')}: ${current.email || ''}`), ' ',
        el('button', { type: 'button', id: 'logout', onclick: logout }, t('logout')))
      : el('a', { href: loginHash, id: 'login-link' }, t('login'));
    const switcher = el('button', {
      type: 'button', id: 'lang', lang: lang() === 'en' ? 'zh-CN' : 'en', title: t('language_label'),
      onclick: () => { setLang(lang() === 'en' ? 'zh' : 'en'); renderHeader(); render(); },
    }, t('language'));
    header.replaceChildren(el('div', { class: 'brand' }, el('a', { href: '#/' }, t(titleKey))), nav,
      el('div', { class: 'tools' }, switcher, who));
    const skip = document.getElementById('skip');
    if (skip) skip.textContent = t('skip');
    if (onSession) onSession(current);
  }

  async function logout() {
    const current = session();
    if (current) {
      try {
        await api('POST', '/auth/logout', { body: { refresh_token: current.refresh_token } });
      } catch { /* the session ends here either way */ }
    }
    clearSession();
    renderHeader();
    location.hash = loginHash;
  }

  let generation = 0;
  function render() {
    stop.forEach((f) => f());
    stop = [];
    generation += 1;
    const mine = generation;
    const hash = location.hash || '#/';
    for (const [pattern, view] of Object.entries(routes)) {
      const re = new RegExp(`^${pattern.replace(/:[a-z_]+/g, '([^/]+)')}$`);
      const match = hash.match(re);
      if (match) {
        main.replaceChildren();
        const params = match.slice(1).map(decodeURIComponent);
        const ctx = { onLeave: (f) => stop.push(f), rerenderHeader: renderHeader };
        Promise.resolve(view(main, ctx, ...params)).catch((err) => {
          // A view left meanwhile (an ended session goes to the login) says nothing more.
          if (mine !== generation) return;
          if (err instanceof Problem) showProblem(err, main);
          else throw err;
        });
        return;
      }
    }
    main.replaceChildren(el('p', {}, t('no_results')));
  }

  document.addEventListener('ordo:expired', () => {
    renderHeader();
    say(t('session_expired'), 'error');
    location.hash = loginHash;
  });
  document.addEventListener('ordo:session', renderHeader);
  window.addEventListener('hashchange', render);
  renderHeader();
  render();
}

/** A login form; `after(session)` runs on success. */
export function loginForm(after) {
  const email = field(t('email'), { type: 'email', name: 'email', id: 'login-email', autocomplete: 'username', required: true });
  const password = field(t('password'), { type: 'password', name: 'password', id: 'login-password', autocomplete: 'current-password', required: true });
  const out = el('div', { class: 'out' });
  const form = el('form', { class: 'card', id: 'login-form', 'aria-labelledby': 'login-heading' },
    el('h2', { id: 'login-heading' }, t('login')), email, password,
    el('button', { type: 'submit', id: 'login-submit' }, t('login')), out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const answer = await api('POST', '/auth/login', {
        body: { email: email.input.value.trim(), password: password.input.value },
      });
      const kept = keepSession(answer);
      document.dispatchEvent(new CustomEvent('ordo:session'));
      await after(kept);
    });
  });
  return form;
}

/** A registration form (customer or provider); `after(session)` runs on success. */
export function registerForm(after, role = 'customer') {
  const name = field(t('full_name'), { name: 'full_name', id: 'register-name', autocomplete: 'name', required: true, maxlength: 100 });
  const email = field(t('email'), { type: 'email', name: 'email', id: 'register-email', autocomplete: 'email', required: true });
  const password = field(`${t('password')} (${t('password_hint')})`, { type: 'password', name: 'password', id: 'register-password', autocomplete: 'new-password', required: true, minlength: 8 });
  const out = el('div', { class: 'out' });
  const form = el('form', { class: 'card', id: 'register-form', 'aria-labelledby': 'register-heading' },
    el('h2', { id: 'register-heading' }, t('register')), name, email, password,
    el('button', { type: 'submit', id: 'register-submit' }, t('register')), out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const answer = await api('POST', '/auth/register', {
        body: { email: email.input.value.trim(), password: password.input.value, full_name: name.input.value.trim(), role },
      });
      const kept = keepSession(answer);
      document.dispatchEvent(new CustomEvent('ordo:session'));
      await after(kept);
    });
  });
  return form;
}

/** A section with a heading. */
export function section(title, ...children) {
  const id = `h-${Math.random().toString(36).slice(2, 9)}`;
  return el('section', { 'aria-labelledby': id }, el('h2', { id }, title), ...children);
}

/** A table: headers and rows of cells. */
export function table(caption, headers, rows, attributes = {}) {
  return el('table', attributes,
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c))))));
}

/**
 * Reads a server-sent event stream with the bearer token (EventSource cannot send one):
 * calls `onEvent(data, id)` for each event, reconnects with the last id after the stream
 * ends (as it does when the token expires) or fails. Answers a function that stops it.
 */
export function eventStream(path, onEvent) {
  let stopped = false;
  let lastId = null;
  let controller = null;
  async function run() {
    while (!stopped) {
      const current = session();
      if (!current) return;
      controller = new AbortController();
      try {
        const headers = { authorization: `Bearer ${current.access_token}`, accept: 'text/event-stream' };
        if (lastId) headers['last-event-id'] = lastId;
        const response = await fetch(`/api/v1${path}`, { headers, signal: controller.signal });
        if (response.status === 401) {
          if (!(await refresh())) return;
          continue;
        }
        if (!response.ok || !response.body) throw new Error(String(response.status));
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const chunk = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let data = '';
            let id = null;
            for (const line of chunk.split('\n')) {
              if (line.startsWith('data:')) data += line.slice(5).trim();
              else if (line.startsWith('id:')) id = line.slice(3).trim();
            }
            if (id) lastId = id;
            if (data) {
              try { onEvent(JSON.parse(data), id); } catch { /* not JSON: skipped */ }
            }
          }
        }
      } catch {
        if (stopped) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  run();
  return () => { stopped = true; if (controller) controller.abort(); };
}
