// The dashboard: signs in, then keeps every tab current from the API and its change feed.
import { signIn, signOut, request, SignInError } from './api.js';
import {
  el, renderOverview, renderDevices, syncNow, renderConflicts, renderBackups, backupNow, renderHousehold, invite,
  renderAudit, importFile, renderSettings, saveSettings, renderSnapshots, showProgress,
} from './tabs.js';

const tabs = [...document.querySelectorAll('[role="tab"]')];
let status = null;

/** Shows one tab; arrow keys move between tabs (the WAI-ARIA tabs pattern). */
function select(tab, focus) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    document.getElementById(t.getAttribute('aria-controls')).hidden = !on;
  }
  if (focus) tab.focus();
  history.replaceState(null, '', '/#' + tab.getAttribute('aria-controls'));
  refresh(tab.getAttribute('aria-controls'));
}

for (const [i, t] of tabs.entries()) {
  t.addEventListener('click', () => select(t, false));
  t.addEventListener('keydown', (e) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (step) select(tabs[(i + step + tabs.length) % tabs.length], true);
    if (e.key === 'Home') select(tabs[0], true);
    if (e.key === 'End') select(tabs[tabs.length - 1], true);
  });
}

function showRefusal(message) {
  const box = document.getElementById('signin');
  box.replaceChildren(el('p', { id: 'signin-message' }, message));
  box.hidden = false;
  document.getElementById('tabs').hidden = true;
  document.getElementById('sign-out').hidden = true;
  for (const t of tabs) document.getElementById(t.getAttribute('aria-controls')).hidden = true;
}

function failed(e) {
  if (e instanceof SignInError) showRefusal(e.message);
  else document.getElementById('live').textContent = 'Error: ' + e.message;
}

/** Shows a status: the cards, the devices and the backup summary. */
function showStatus(next) {
  status = next;
  renderOverview(status);
  renderDevices(status);
  renderBackups(status);
  document.getElementById('overview').dataset.loaded = String(status.store.last_sequence);
}

/** Reads what the shown tab needs (and status, unless the live stream brings it). */
async function refresh(which, withStatus = true) {
  try {
    if (withStatus || !status) showStatus(await request('GET', '/v1/status'));
    const shown = which || tabs.find((t) => t.getAttribute('aria-selected') === 'true')?.getAttribute('aria-controls');
    if (shown === 'conflicts') await renderConflicts(() => refresh());
    if (shown === 'household') await renderHousehold(status);
    if (shown === 'activity') await renderAudit(document.getElementById('activity-filter').value);
    // The text being edited is not replaced by a refresh; only opening the tab reads the file.
    if (which === 'settings') await renderSettings();
    if (which === 'backups') await renderSnapshots();
  } catch (e) {
    failed(e);
  }
}

let pending = null;
/** Many changes in a burst cause one read of the shown tab. */
function refreshSoon() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh(undefined, false); }, 250);
}

/** Shows one change in the Activity tab's feed. */
function showChange(change) {
  const list = document.getElementById('change-feed');
  const r = change.record;
  const text = `#${change.sequence} ${change.origin}: ${r.collection}/${r.id}${r.deleted ? ' (deleted)' : ''}`;
  const item = el('li', { dataset: { sequence: change.sequence } }, text);
  const f = document.getElementById('activity-filter').value.trim().toLowerCase();
  item.hidden = f !== '' && !text.toLowerCase().includes(f);
  list.prepend(item);
  while (list.children.length > 200) list.lastChild.remove();
}

let fallback = null;
/**
 * The live stream (`GET /v1/events`): status as it changes, each change and audit entry, and a
 * backup's progress. While it is down (the browser reconnects by itself) status is read every
 * 30 s instead.
 */
function follow() {
  const stream = new EventSource('/v1/events');
  const live = document.getElementById('live');
  stream.addEventListener('status', (event) => showStatus(JSON.parse(event.data)));
  stream.addEventListener('change', (event) => {
    showChange(JSON.parse(event.data));
    refreshSoon();
  });
  stream.addEventListener('audit', () => {
    if (!document.getElementById('activity').hidden) refreshSoon();
  });
  stream.addEventListener('progress', (event) => showProgress(JSON.parse(event.data)));
  stream.addEventListener('open', () => {
    live.textContent = 'live';
    live.dataset.state = 'live';
    clearInterval(fallback);
    fallback = null;
  });
  stream.addEventListener('error', () => {
    live.textContent = 'reconnecting to the agent… (reading status every 30 s meanwhile)';
    live.dataset.state = 'reconnecting';
    if (!fallback) fallback = setInterval(() => refresh(), 30000);
  });
}

document.getElementById('sync-now').addEventListener('click', () => syncNow().then(() => refresh()));
document.getElementById('backup-now').addEventListener('click', () => backupNow(() => refresh('backups')));
document.getElementById('invite').addEventListener('click', () => invite(() => refresh()).catch(failed));
document.getElementById('config-save').addEventListener('click', () => saveSettings().then(() => refresh()));
document.getElementById('config-reload').addEventListener('click', () => renderSettings().catch(failed));
document.getElementById('import-check').addEventListener('click', () => importFile(true));
document.getElementById('import-run').addEventListener('click', () => importFile(false).then(() => refresh()));
document.getElementById('activity-filter').addEventListener('input', (e) => {
  const f = e.target.value.trim().toLowerCase();
  for (const item of document.getElementById('change-feed').children) item.hidden = f !== '' && !item.textContent.toLowerCase().includes(f);
  renderAudit(e.target.value).catch(failed);
});
document.getElementById('sign-out').addEventListener('click', async () => {
  await signOut().catch(() => {});
  showRefusal('Signed out. Run `hubsync dashboard` to sign in again.');
});

// A sign-in link opened in a tab that shows the dashboard already changes only the fragment,
// which reloads nothing: the page loads again to sign in with it.
window.addEventListener('hashchange', () => { if (/code=/.test(location.hash)) location.reload(); });

// On a narrow screen the table headings are hidden: each cell carries its column's heading.
function labelCells(root) {
  for (const table of root.querySelectorAll('table')) {
    const headings = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
    if (!headings.length) continue;
    for (const row of table.querySelectorAll('tr')) {
      if (row.parentElement.tagName === 'THEAD') continue;
      [...row.children].forEach((cell, i) => { if (headings[i] && !cell.dataset.label) cell.dataset.label = headings[i]; });
    }
  }
}
new MutationObserver(() => labelCells(document)).observe(document.body, { childList: true, subtree: true });

// "… ago" times move on between two statuses: the last one is shown again every 15 s (no request).
setInterval(() => { if (status) showStatus(status); }, 15000);

try {
  const start = /^#(overview|devices|conflicts|backups|household|activity|migration|settings)$/.exec(location.hash);
  await signIn();
  document.getElementById('tabs').hidden = false;
  document.getElementById('sign-out').hidden = false;
  follow();
  select(document.getElementById('tab-' + (start ? start[1] : 'overview')), false);
} catch (e) {
  failed(e);
}
