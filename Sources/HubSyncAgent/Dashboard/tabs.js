// What each tab shows, built with DOM nodes and textContent only (no HTML from data).
import { request, segment, APIError } from './api.js';

/** An element with attributes and children (strings become text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** A device's name, else the first group of its ID. */
export function deviceLabel(name, id) {
  return name ? `${name} (${id.split('-')[0]})` : id.split('-')[0];
}

/** "3 min ago" for an RFC 3339 time. */
export function ago(time) {
  if (!time) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(time)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function card(stat, title, figure, note, noteClass) {
  return el('div', { class: 'card', dataset: { stat } },
    el('h3', {}, title), el('p', { class: 'figure' }, figure), note ? el('p', { class: 'note ' + (noteClass || '') }, note) : null);
}

/** Overview: the stat cards, the same figures as `hubsync status --json`. */
export function renderOverview(status) {
  document.getElementById('device-name').textContent = status.device_name || status.device_id.split('-')[0];
  const cards = [];
  for (const [collection, n] of Object.entries(status.store.records).sort()) {
    cards.push(card('records.' + collection, collection, n, 'records'));
  }
  cards.push(card('conflicts', 'Open conflicts', status.store.conflicts, status.store.conflicts ? 'see Conflicts' : 'none',
    status.store.conflicts ? 'warn' : 'ok'));
  const connected = status.peers.filter((p) => p.connected).length;
  cards.push(card('peers', 'Devices connected', `${connected} of ${status.peers.length}`, 'trusted devices'));
  const syncs = status.peers.map((p) => p.last_sync).filter(Boolean).sort();
  cards.push(card('last_sync', 'Last sync', syncs.length ? ago(syncs[syncs.length - 1]) : 'never', syncs[syncs.length - 1]));
  const b = status.backup;
  if (b) {
    cards.push(card('last_backup', 'Last backup', b.last ? ago(b.last) : 'never', b.warning || (b.target ? 'to ' + b.target : ''),
      b.warning ? 'warn' : 'ok'));
  } else {
    cards.push(card('last_backup', 'Last backup', 'not scheduled', 'no "backup" in config.json'));
  }
  cards.push(card('sequence', 'Changes recorded', status.store.last_sequence, 'this store\'s change log'));
  document.getElementById('cards').replaceChildren(...cards);
  const count = document.getElementById('conflict-count');
  count.textContent = status.store.conflicts ? `(${status.store.conflicts})` : '';
}

/** Devices: every trusted peer, connected or why not. */
export function renderDevices(status) {
  const rows = status.peers.map((p) => el('tr', { dataset: { device: p.device_id } },
    el('td', {}, deviceLabel(p.device_name, p.device_id)),
    el('td', { class: p.connected ? 'ok' : 'warn' }, p.connected ? 'connected' : 'not connected: ' + (p.reason || '')),
    el('td', {}, ago(p.last_sync)),
    el('td', {}, String(p.pending_to_send)),
    el('td', {}, `${p.bytes_sent} / ${p.bytes_received}`),
    el('td', {}, p.last_repair_round
      ? `${ago(p.last_repair)}: ${p.last_repair_round.records_sent} sent, ${p.last_repair_round.records_received} received`
      : 'none yet')));
  const table = el('table', {},
    el('thead', {}, el('tr', {}, ['Device', 'State', 'Last sync', 'Changes waiting', 'Bytes sent / received', 'Last repair round']
      .map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows));
  document.getElementById('peer-list').replaceChildren(status.peers.length ? table : el('p', {}, 'No trusted devices yet: invite one in Household.'));
}

/** Sync now: a repair round with every connected peer, and its result. */
export async function syncNow() {
  const state = document.getElementById('sync-state'), list = document.getElementById('sync-result');
  const button = document.getElementById('sync-now');
  button.disabled = true;
  state.textContent = 'running repair rounds…';
  list.replaceChildren();
  try {
    const answer = await request('POST', '/v1/sync', {});
    state.textContent = `${answer.rounds} repair round${answer.rounds === 1 ? '' : 's'} done`;
    list.replaceChildren(...answer.peers.map((p) => el('li', { class: p.round ? 'ok repair-round' : 'warn', dataset: { device: p.device_id } },
      deviceLabel(p.device_name, p.device_id) + ': ' + (p.round
        ? `repair round: ${p.round.records_sent} records sent, ${p.round.records_received} received, `
          + `${p.round.round_trips} round trips, ${p.round.bytes_sent + p.round.bytes_received} bytes, ${p.round.milliseconds} ms`
        : p.reason))));
  } catch (e) {
    state.textContent = 'Sync failed: ' + e.message;
  } finally {
    button.disabled = false;
  }
}

/** Conflicts: each conflicted field with its values side by side; keep one or write another. */
export async function renderConflicts(onResolved) {
  const conflicts = await request('GET', '/v1/conflicts');
  document.getElementById('conflicts-empty').hidden = conflicts.length > 0;
  const items = conflicts.map((c, i) => {
    const path = `/v1/records/${segment(c.collection)}/${segment(c.id)}/resolve`;
    const message = el('p', { role: 'status' });
    const resolve = async (value) => {
      try {
        await request('POST', path, { field: c.field, value });
        document.getElementById('conflicts-message').textContent =
          `Resolved ${c.collection}/${c.id} ${c.field}: ${JSON.stringify(value)}, on every device as they sync.`;
        onResolved();
      } catch (e) {
        message.textContent = 'Not resolved: ' + e.message;
      }
    };
    const textId = `conflict-${i}-value`;
    const written = el('textarea', { id: textId, rows: 2 }, JSON.stringify(c.value));
    return el('article', { class: 'conflict', dataset: { record: `${c.collection}/${c.id}`, field: c.field } },
      el('h3', {}, `${c.collection}/${c.id} — ${c.field}`),
      el('div', { class: 'versions' }, c.versions.map((v) => el('div', { class: 'version' },
        el('pre', {}, JSON.stringify(v.value, null, 2)),
        el('p', {}, `${deviceLabel(v.device_name, v.device)}, ${new Date(v.written).toLocaleString()}`),
        el('button', { type: 'button', class: 'keep', onclick: () => resolve(v.value) },
          `Keep the value of ${v.device_name || v.device.split('-')[0]}`)))),
      el('p', {}, el('label', { for: textId }, 'Or write a value (JSON)')), written,
      el('p', {}, el('button', { type: 'button', class: 'write', onclick: () => {
        let value;
        try { value = JSON.parse(written.value); } catch (e) { message.textContent = 'That is not JSON: ' + e.message; return; }
        resolve(value);
      } }, 'Use this value')),
      message);
  });
  document.getElementById('conflict-list').replaceChildren(...items);
}

/** Backups: the schedule from config.json and what it did last. */
export function renderBackups(status) {
  const b = status.backup, box = document.getElementById('backup-summary');
  if (!b) {
    box.replaceChildren(el('p', {}, 'No backup target is configured: add "backup": {"targets": [...]} to config.json '
      + '(the README\'s Backups section), then send SIGHUP or restart the agent.'));
    document.getElementById('backup-now').disabled = true;
    return;
  }
  document.getElementById('backup-now').disabled = false;
  box.replaceChildren(
    el('p', {}, 'Targets: ', b.targets.join(', ')),
    el('p', {}, b.interval_seconds
      ? `Every ${b.interval_seconds} s; recovery point ${b.recovery_point_seconds} s.`
      : 'Not on a schedule ("interval_seconds" is 0): backups happen when asked.'),
    el('p', { id: 'backup-last', class: b.warning ? 'warn' : '' },
      b.last ? `Last backup ${ago(b.last)} (${b.last}), snapshot ${b.snapshot}, to ${b.target}` : 'No backup yet.',
      b.warning ? ' — ' + b.warning : ''));
}

/** Backup now, to every configured target. */
export async function backupNow(done) {
  const state = document.getElementById('backup-state'), list = document.getElementById('backup-result');
  const button = document.getElementById('backup-now');
  button.disabled = true;
  const started = Date.now();
  state.textContent = 'backing up…';
  // The agent's progress, read twice a second while the backup runs.
  const timer = setInterval(async () => {
    const p = await request('GET', '/v1/backups/progress').catch(() => null);
    const seconds = Math.round((Date.now() - started) / 1000);
    state.textContent = p && p.running
      ? `backing up to ${p.target}: ${p.phase}${p.total ? ` ${p.done} of ${p.total}` : ''} (${seconds} s)`
      : `backing up… ${seconds} s`;
  }, 500);
  list.replaceChildren();
  try {
    const answer = await request('POST', '/v1/backups', {});
    state.textContent = answer.failed ? `${answer.failed} target(s) failed` : 'backup done';
    list.replaceChildren(...answer.targets.map((t) => el('li', { class: t.snapshot ? 'ok backup-snapshot' : 'warn', dataset: { snapshot: t.snapshot } },
      t.snapshot ? `${t.target}: snapshot ${t.snapshot}` : `${t.target}: failed: ${t.error}`)));
  } catch (e) {
    state.textContent = 'Backup failed: ' + e.message;
  } finally {
    clearInterval(timer);
    button.disabled = false;
    done();
  }
}

/** Household: its members, with removal after a confirmation. */
export async function renderHousehold(status) {
  const answer = await request('GET', '/v1/pairing/household');
  const list = document.getElementById('member-list');
  if (!answer.household && !answer.members) {
    list.replaceChildren(el('li', {}, 'No household yet: invite a device to found one.'));
    return;
  }
  const names = answer.names || {};
  list.replaceChildren(...answer.members.map((id) => {
    const item = el('li', { dataset: { device: id } }, deviceLabel(names[id], id));
    if (id !== status.device_id) {
      const confirmBox = el('span', { hidden: true, role: 'group', 'aria-label': 'Confirm removal' },
        ` Remove ${names[id] || id.split('-')[0]} from the household on every device? `,
        el('button', { type: 'button', class: 'confirm-remove', onclick: async () => {
          try {
            await request('DELETE', `/v1/pairing/household/${segment(id)}`);
            renderHousehold(status);
          } catch (e) {
            confirmBox.replaceChildren('Not removed: ' + e.message);
          }
        } }, 'Yes, remove'), ' ',
        el('button', { type: 'button', onclick: () => { confirmBox.hidden = true; } }, 'Cancel'));
      item.append(' ', el('button', { type: 'button', class: 'remove', onclick: () => { confirmBox.hidden = false; } }, 'Remove'), confirmBox);
    } else {
      item.append(' (this device)');
    }
    return item;
  }));
}

let inviteTimer = null;

/** Invite: opens an invite and shows its code, the time left and the failed attempts, live. */
export async function invite(onChange) {
  const invite = await request('POST', '/v1/pairing/invites', {});
  document.getElementById('invite-box').hidden = false;
  document.getElementById('invite-code').textContent = invite.code;
  const show = (i) => {
    document.getElementById('invite-state').textContent = i.state + (i.device_id ? ` (${i.device_id.split('-')[0]} joined)` : '');
    document.getElementById('invite-attempts').textContent = `${i.attempts_left} attempts left`;
    document.getElementById('invite-failures').replaceChildren(...i.failures.map((f) =>
      el('li', { class: 'warn' }, `${new Date(f.time).toLocaleTimeString()}: ${f.reason}${f.address ? ' from ' + f.address : ''}`)));
  };
  show(invite);
  clearInterval(inviteTimer);
  const expiry = Date.parse(invite.expires_at);
  const tick = () => {
    const left = Math.max(0, Math.round((expiry - Date.now()) / 1000));
    document.getElementById('invite-expiry').textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
    if (left === 0) clearInterval(inviteTimer);
  };
  tick();
  inviteTimer = setInterval(tick, 1000);
  // Follows the invite with the API's long poll until it is no longer open.
  let revision = invite.revision, state = invite.state;
  while (state === 'open') {
    let next;
    try {
      next = await request('GET', `/v1/pairing/invites/${segment(invite.name)}?after=${revision}&wait=30`);
    } catch (e) {
      if (e instanceof APIError) break;
      throw e;
    }
    revision = next.revision;
    state = next.state;
    show(next);
  }
  if (state !== 'open') clearInterval(inviteTimer);
  onChange();
}

/** Activity: the audit journal (newest first). */
export async function renderAudit(filter) {
  const entries = await request('GET', '/v1/audit');
  const f = filter.trim().toLowerCase();
  const items = entries.reverse()
    .map((e) => ({ e, text: `${e.time}  ${deviceLabel(e.device_name, e.device_id)}  ${e.action}: ${e.detail}` }))
    .filter(({ text }) => !f || text.toLowerCase().includes(f))
    .slice(0, 200)
    .map(({ e, text }) => el('li', { dataset: { action: e.action } }, text));
  document.getElementById('audit-list').replaceChildren(...items);
}

/** Migration: a dry run of the chosen file first, then the import. */
export async function importFile(dryRun) {
  const file = document.getElementById('import-file').files[0], report = document.getElementById('import-report');
  if (!file) { report.replaceChildren(el('p', { class: 'warn' }, 'Choose a file first.')); return; }
  const persona = document.getElementById('import-persona').value.trim();
  let path = `/v1/import?name=${encodeURIComponent(file.name)}` + (dryRun ? '&dry_run=1' : '');
  if (persona) path += `&persona=${encodeURIComponent(persona)}`;
  report.replaceChildren(el('p', {}, dryRun ? 'checking…' : 'importing…'));
  try {
    const a = await request('POST', path, file);
    report.replaceChildren(
      el('p', { class: 'ok', id: dryRun ? 'dry-run-report' : 'import-done' },
        `${dryRun ? 'Dry run' : 'Imported'}: ${a.format}, ${a.records} records — ${a.create} new, ${a.update} changed, `
        + `${a.unchanged} unchanged, ${a.remove} removed; ${a.skipped_count} skipped.`),
      el('ul', {}, (a.skipped || []).map((s) => el('li', { class: 'warn' }, `${s.place}: ${s.reason}`))));
    document.getElementById('import-run').disabled = !dryRun;
  } catch (e) {
    report.replaceChildren(el('p', { class: 'warn', role: 'alert' }, 'Refused, nothing was imported: ' + e.message));
    document.getElementById('import-run').disabled = true;
  }
}

/** Settings: config.json's text, read from the agent. */
export async function renderSettings() {
  const config = await request('GET', '/v1/config');
  document.getElementById('config-path').textContent = config.path + (config.exists ? '' : ', not created yet: the defaults apply');
  document.getElementById('config-text').value = config.text;
  document.getElementById('config-message').textContent = '';
}

/** Saves config.json: checked as at start, written only when it passes, applied at once. */
export async function saveSettings() {
  const message = document.getElementById('config-message');
  try {
    const a = await request('PUT', '/v1/config', { text: document.getElementById('config-text').value });
    message.className = 'ok';
    message.textContent = 'Saved. ' + (a.applied.length ? `Applied now: ${a.applied.join(', ')}. ` : 'Nothing that applies now changed. ')
      + (a.after_restart.length ? `After the agent restarts: ${a.after_restart.join(', ')}.` : '');
  } catch (e) {
    message.className = 'warn';
    message.textContent = 'Not saved: ' + e.message;
  }
}

/** Backups: each configured target's snapshots, and verify. */
export async function renderSnapshots() {
  const box = document.getElementById('snapshot-list');
  let answer;
  try {
    answer = await request('GET', '/v1/backups/snapshots');
  } catch (e) {
    if (e instanceof APIError && e.status === 409) { box.replaceChildren(); return; }
    throw e;
  }
  box.replaceChildren(...answer.targets.map((t, i) => {
    const readId = `verify-read-${i}`, result = el('p', { class: 'verify-result', role: 'status' });
    const verify = async (button) => {
      button.disabled = true;
      result.textContent = 'verifying…';
      try {
        const v = await request('POST', '/v1/backups/verify', { target: t.target, read_data: document.getElementById(readId).checked });
        result.className = 'verify-result ' + (v.ok ? 'ok' : 'warn');
        result.textContent = v.ok
          ? `ok: ${v.snapshots} snapshots, ${v.packs} packs${v.packs_read ? `, ${v.packs_read} read (${v.bytes_read} bytes), ${v.blobs_checked} chunks checked` : ''}`
          : `${v.problems.length} problems: ${v.problems.join('; ')}`;
      } catch (e) {
        result.className = 'verify-result warn';
        result.textContent = 'Not verified: ' + e.message;
      } finally {
        button.disabled = false;
      }
    };
    const rows = t.snapshots.slice().reverse().map((s) => el('tr', { dataset: { snapshot: s.id } },
      el('td', {}, s.short_id), el('td', {}, new Date(s.time_iso).toLocaleString()), el('td', {}, s.hostname),
      el('td', {}, String(s.records)), el('td', {}, `${s.bytes} bytes (+${s.added_bytes})`)));
    return el('article', { class: 'conflict', dataset: { target: t.target } },
      el('h4', {}, t.target),
      t.error ? el('p', { class: 'warn' }, t.error) : null,
      (t.unreadable || []).map((u) => el('p', { class: 'warn' }, 'not used: ' + u)),
      rows.length ? el('table', {},
        el('thead', {}, el('tr', {}, ['Snapshot', 'Time', 'Host', 'Records', 'Size'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, rows)) : el('p', {}, 'No snapshots yet.'),
      el('p', {}, el('input', { type: 'checkbox', id: readId }), ' ', el('label', { for: readId }, 'read every pack (--read-data)'), ' ',
        el('button', { type: 'button', class: 'verify', onclick: (e) => verify(e.target) }, 'Verify')),
      result);
  }));
}
