// The admin console's catalog views: the category tree (create, rename, move, delete), a
// product's editor (name, description, category, price, media in display order) with a
// product of several SKUs (an SPU with its specifications), the safety threshold below which
// admins are alerted, and adding a session to a show.
import { api, attempt, el, field, money, poll, section, t, table } from './common.js';
import { addWords } from './i18n.js';

addWords({
  categories: ['分类管理', 'Categories'],
  parent: ['上级分类', 'Parent category'],
  no_parent: ['(顶级)', '(top level)'],
  rename: ['改名', 'Rename'],
  move: ['移动', 'Move'],
  remove: ['删除', 'Delete'],
  new_name: ['新名称', 'New name'],
  edit_product: ['编辑商品', 'Edit product'],
  media: ['图片与视频 (每行一个网址)', 'Pictures and videos (one URL per line)'],
  saved: ['已保存', 'Saved'],
  edit: ['编辑', 'Edit'],
  product_id: ['商品 (SPU) 编号', 'Product (SPU) id'],
  sku_lines: ['SKU (每行: SKU;价格;规格 如 颜色=黑,尺码=M)', 'SKUs (one per line: SKU;price;spec such as colour=black,size=M)'],
  create_spu: ['创建多规格商品', 'Create a product with several SKUs'],
  add_session: ['添加场次', 'Add a session'],
  show: ['演出', 'Show'],
  session_added: ['场次已添加', 'Session added'],
  area_id: ['区域编号', 'Area id'],
  capacity: ['座位数', 'Seats'],
  safety_threshold: ['安全库存', 'Safety threshold'],
  set_threshold: ['设置安全库存', 'Set the safety threshold'],
  threshold_set: ['安全库存已设置', 'Safety threshold set'],
});

// --- categories ---------------------------------------------------------------------

/** The category tree, with every change an admin can make to it. */
export async function categories(main) {
  const out = el('div', { class: 'out', id: 'category-out', 'aria-live': 'polite' });
  const list = el('div', { id: 'categories' });
  const name = field(t('name'), { id: 'category-name', required: true, maxlength: 100 });
  const parent = field(t('parent'), { tag: 'select', id: 'category-parent', options: [['', t('no_parent')]] });
  let known = [];

  function pathOf(category) {
    const names = [];
    for (let c = category, guard = 0; c && guard < 50; guard += 1) {
      names.unshift(c.name);
      c = known.find((k) => k.category_id === c.parent_id);
    }
    return names.join(' / ');
  }

  /** Waits until the tree shows `check` (it is a read model). */
  async function settle(check) {
    await poll(async () => check((await api('GET', '/categories')).categories), { ms: 300, tries: 40 });
    await load();
  }

  async function load() {
    known = (await api('GET', '/categories')).categories;
    const options = [['', t('no_parent')], ...known.map((c) => [c.category_id, pathOf(c)])];
    parent.input.replaceChildren(...options.map(([value, text]) => el('option', { value }, text)));
    list.replaceChildren(el('div', { class: 'table-wrap' }, table(t('categories'), [t('name'), t('parent'), ''],
      known.map((c) => {
        const rename = el('input', { type: 'text', maxlength: 100, id: `rename-${c.category_id}`, 'aria-label': `${t('new_name')}: ${c.name}` });
        const renameButton = el('button', { type: 'button', class: 'secondary', 'data-rename': c.category_id }, t('rename'));
        renameButton.addEventListener('click', () => attempt(out, async () => {
          const wanted = rename.value.trim();
          await api('PATCH', `/categories/${c.category_id}`, { body: { name: wanted } });
          await settle((all) => all.some((k) => k.category_id === c.category_id && k.name === wanted));
        }));
        const move = el('select', { id: `move-${c.category_id}`, 'aria-label': `${t('move')}: ${c.name}` },
          ...options.filter(([value]) => value !== c.category_id).map(([value, text]) => el('option', { value, selected: value === (c.parent_id || '') }, text)));
        const moveButton = el('button', { type: 'button', class: 'secondary', 'data-move': c.category_id }, t('move'));
        moveButton.addEventListener('click', () => attempt(out, async () => {
          const to = move.value || null;
          await api('PATCH', `/categories/${c.category_id}`, { body: { parent_id: to } });
          await settle((all) => all.some((k) => k.category_id === c.category_id && (k.parent_id || null) === to));
        }));
        const remove = el('button', { type: 'button', class: 'secondary', 'data-delete': c.category_id }, t('remove'));
        remove.addEventListener('click', () => attempt(out, async () => {
          await api('DELETE', `/categories/${c.category_id}`);
          await settle((all) => !all.some((k) => k.category_id === c.category_id));
        }));
        return [el('span', { 'data-category': c.category_id }, pathOf(c)),
          known.find((k) => k.category_id === c.parent_id)?.name ?? '-',
          el('span', { class: 'row' }, rename, renameButton, move, moveButton, remove)];
      }))));
  }

  const create = el('form', { class: 'card', id: 'category-form', 'aria-label': t('create') }, name, parent,
    el('button', { type: 'submit', id: 'category-submit' }, t('create')));
  create.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const wanted = name.input.value.trim();
      const body = { name: wanted };
      if (parent.input.value) body.parent_id = parent.input.value;
      await api('POST', '/categories', { body });
      await settle((all) => all.some((k) => k.name === wanted && (k.parent_id || '') === (body.parent_id || '')));
      name.input.value = '';
    });
  });
  main.append(section(t('create'), create), out, list);
  await load();
}

// --- products -----------------------------------------------------------------------

/** One product's editor: name, description, category, price and media. */
export async function productEditor(main, _ctx, sku) {
  const out = el('div', { class: 'out', id: 'edit-out', 'aria-live': 'polite' });
  const shown = el('div', { id: 'product-shown' });
  const product = await api('GET', `/products/${encodeURIComponent(sku)}`);
  const name = field(t('name'), { id: 'edit-name', maxlength: 200, value: product.name });
  const description = field(t('description'), { id: 'edit-description', tag: 'textarea', maxlength: 5000 });
  description.input.value = product.description || '';
  const category = field(t('category'), { id: 'edit-category', maxlength: 100, value: product.category });
  const price = field(`${t('price')} (分 / minor units)`, { id: 'edit-price', type: 'number', min: 1, value: product.price });
  const media = field(t('media'), { id: 'edit-media', tag: 'textarea' });
  media.input.value = (product.media || []).join('\n');

  function show(p) {
    shown.replaceChildren(el('p', { id: 'shown-name' }, p.name), el('p', { class: 'price', id: 'shown-price' }, money(p.price, p.currency)),
      el('ul', { id: 'shown-media' }, ...(p.media || []).map((url) => el('li', {}, el('a', { href: url, rel: 'noopener' }, url)))));
  }

  const editor = el('form', { class: 'card', id: 'edit-form', 'aria-label': t('edit_product') }, name, description, category, price, media,
    el('button', { type: 'submit', id: 'edit-submit' }, t('save')));
  editor.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const body = {
        name: name.input.value.trim(),
        description: description.input.value,
        category: category.input.value.trim(),
        price: Number(price.input.value),
        currency: product.currency,
        media: media.input.value.split('\n').map((line) => line.trim()).filter(Boolean),
      };
      await api('PATCH', `/products/${encodeURIComponent(sku)}`, { body });
      const updated = await poll(async () => {
        const now = await api('GET', `/products/${encodeURIComponent(sku)}`);
        return now.name === body.name && now.price === body.price && (now.media || []).length === body.media.length ? now : null;
      }, { ms: 300, tries: 40 });
      if (updated) show(updated);
      out.replaceChildren(el('p', { class: 'notice ok', id: 'edit-saved' }, t('saved')));
    });
  });
  show(product);
  const stock = await api('GET', `/inventory/${encodeURIComponent(sku)}`).catch(() => null);
  const threshold = field(t('safety_threshold'), { id: 'edit-threshold', type: 'number', min: 0, value: stock ? stock.safety_threshold ?? 0 : 0 });
  const thresholdOut = el('div', { class: 'out', id: 'threshold-out', 'aria-live': 'polite' });
  const thresholdForm = el('form', { class: 'card', id: 'threshold-form', 'aria-label': t('set_threshold') }, threshold,
    el('button', { type: 'submit', id: 'threshold-submit' }, t('set_threshold')), thresholdOut);
  thresholdForm.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(thresholdOut, async () => {
      const set = await api('PUT', `/inventory/${encodeURIComponent(sku)}/safety-threshold`, { body: { threshold: Number(threshold.input.value) } });
      thresholdOut.replaceChildren(el('p', { class: 'notice ok', id: 'threshold-set' }, `${t('threshold_set')}: ${set.safety_threshold}`));
    });
  });
  main.append(el('h2', {}, `${t('sku')}: ${product.sku}`), shown, editor, out, thresholdForm);
}

/** A form creating one product (SPU) with several SKUs and their specifications. */
export function productWithSkus(onCreated) {
  const out = el('div', { class: 'out', id: 'spu-out', 'aria-live': 'polite' });
  const productId = field(t('product_id'), { id: 'spu-id', required: true, pattern: '[A-Za-z0-9_-]{1,64}' });
  const name = field(t('name'), { id: 'spu-name', required: true, maxlength: 200 });
  const category = field(t('category'), { id: 'spu-category', required: true, maxlength: 100 });
  const currency = field(t('currency'), { id: 'spu-currency', value: 'CNY', required: true, pattern: '[A-Z]{3}' });
  const lines = field(t('sku_lines'), { id: 'spu-skus', tag: 'textarea', required: true });
  const node = el('form', { class: 'card', id: 'spu-form', 'aria-label': t('create_spu') }, productId, name, category, currency, lines,
    el('button', { type: 'submit', id: 'spu-submit' }, t('create')), out);
  node.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const skus = lines.input.value.split('\n').map((line) => line.trim()).filter(Boolean).map((line) => {
        const [sku, amount, spec = ''] = line.split(';').map((part) => part.trim());
        const pairs = spec.split(',').map((pair) => pair.split('=').map((s) => s.trim())).filter(([k, v]) => k && v);
        return { sku, price: Number(amount), currency: currency.input.value.trim(), spec: Object.fromEntries(pairs) };
      });
      await api('POST', '/products', { body: {
        product_id: productId.input.value.trim(), name: name.input.value.trim(), category: category.input.value.trim(), skus,
      } });
      await poll(() => api('GET', `/products/${encodeURIComponent(skus[skus.length - 1].sku.toUpperCase())}`).catch(() => null), { ms: 300, tries: 40 });
      out.replaceChildren(el('p', { class: 'notice ok', id: 'spu-created' }, t('created')));
      await onCreated();
    });
  });
  return section(t('create_spu'), node);
}

// --- shows --------------------------------------------------------------------------

/** A form adding a session with one seat area to an existing show. */
export async function addSessionForm() {
  const out = el('div', { class: 'out', id: 'session-out', 'aria-live': 'polite' });
  const page = await api('GET', '/shows?limit=100').catch(() => ({ shows: [] }));
  const showChoice = field(t('show'), { tag: 'select', id: 'session-show', options: page.shows.map((s) => [s.show_id, `${s.title} (${s.city})`]) });
  const startsAt = field(t('sessions'), { id: 'session-starts', type: 'datetime-local', required: true });
  const area = field(t('area_id'), { id: 'session-area', required: true, pattern: '[A-Za-z0-9_-]{1,64}', value: 'A' });
  const price = field(`${t('price')} (分 / minor units)`, { id: 'session-price', type: 'number', min: 1, required: true });
  const capacity = field(t('capacity'), { id: 'session-capacity', type: 'number', min: 1, required: true });
  const node = el('form', { class: 'card', id: 'session-form', 'aria-label': t('add_session') }, showChoice, startsAt, area, price, capacity,
    el('button', { type: 'submit', id: 'session-submit' }, t('add_session')), out);
  node.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(out, async () => {
      const showId = showChoice.input.value;
      const added = await api('POST', `/shows/${showId}/sessions`, { body: {
        starts_at: new Date(startsAt.input.value).toISOString(),
        seat_areas: [{ area_id: area.input.value.trim(), name: area.input.value.trim(), price: Number(price.input.value), capacity: Number(capacity.input.value) }],
      } });
      out.replaceChildren(el('p', { class: 'notice ok', id: 'session-added', 'data-session': (added.session_ids || [])[0] || '' }, t('session_added')));
    });
  });
  return section(t('add_session'), node);
}
