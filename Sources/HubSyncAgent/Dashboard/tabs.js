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

/** "1.2 MiB" for a count of bytes: powers of 1024, as the CLI prints them. */
export function bytesText(n) {
  if (n === null || n === undefined) return 'unknown';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u += 1; }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** "1 record", "2 records": a count with its noun in the right number. */
export function plural(n, noun, many) {
  return `${n} ${n === 1 ? noun : (many || noun + 's')}`;
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
  const storage = status.storage;
  cards.push(card('storage.store', 'Store size', bytesText(storage.store_bytes), `${storage.store_bytes} bytes on this device`));
  cards[cards.length - 1].dataset.bytes = String(storage.store_bytes);
  for (const [i, t] of storage.targets.entries()) {
    const quota = t.peer_quota_bytes !== null
      ? `; the peer keeps ${bytesText(t.peer_used_bytes)} of its ${bytesText(t.peer_quota_bytes)} quota for this device` : '';
    const c = card(`storage.target.${i}`, `Backup size: ${t.target}`,
      t.repository_bytes !== null ? bytesText(t.repository_bytes) : 'unknown',
      (t.problem ? t.problem : `measured ${ago(t.measured_at)}`) + quota, t.problem ? 'warn' : 'ok');
    if (t.repository_bytes !== null) c.dataset.bytes = String(t.repository_bytes);
    if (t.peer_quota_bytes !== null) c.dataset.quota = String(t.peer_quota_bytes);
    cards.push(c);
  }
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
    el('td', {}, `${bytesText(p.bytes_sent)} / ${bytesText(p.bytes_received)}`),
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
        ? `repair round: ${plural(p.round.records_sent, 'record')} sent, ${p.round.records_received} received, `
          + `${plural(p.round.round_trips, 'round trip')}, ${bytesText(p.round.bytes_sent + p.round.bytes_received)}, ${p.round.milliseconds} ms`
        : p.reason))));
  } catch (e) {
    state.textContent = 'Sync failed: ' + e.message;
  } finally {
    button.disabled = false;
  }
}

/** Conflicts: each conflicted field with its values side by side; keep one or write another. */
export async function renderConflicts(onResolved) {
  // A value being written (or a button about to be pressed) is not replaced under the cursor;
  // the list is read again once the conflict is resolved.
  if (document.activeElement?.closest?.('#conflict-list')) return;
  const conflicts = await request('GET', '/v1/conflicts');
  document.getElementById('conflicts-empty').hidden = conflicts.length > 0;
  const items = conflicts.map((c, i) => {
    const path = `/v1/records/${segment(c.collection)}/${segment(c.id)}/resolve`;
    const message = el('p', { role: 'status' });
    const resolve = async (value) => {
      try {
        await request('POST', path, { field: c.field, value });
        document.activeElement?.blur?.();
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
      b.warning ? ' — ' + b.warning : ''),
    el('p', { id: 'drill-last', class: b.last_drill ? (b.last_drill.ok ? 'ok' : 'warn') : '' }, drillText(b.last_drill)));
}

/** The last restore drill: its recovery time and recovery point. */
function drillText(d) {
  if (!d) return 'No restore drill yet: Run a drill restores the latest snapshot into a scratch store and checks it.';
  return `Last drill ${ago(d.at)} on ${d.target}: recovery time ${d.recovery_time_seconds.toFixed(1)} s `
    + `(the restore of snapshot ${d.snapshot.slice(0, 8)}), recovery point ${Math.round(d.recovery_point_seconds)} s `
    + `(that snapshot's age)${d.ok ? '; the restored store is sound' : '; problems: ' + d.problems.join('; ')}`;
}

/**
 * A button that asks before it acts: the question and Yes/Cancel appear beside it, and `act`
 * runs only on Yes.
 */
function confirmed(label, className, question, act, missing = () => null) {
  const box = el('span', { hidden: true, role: 'group', 'aria-label': 'Confirm: ' + label });
  const open = el('button', { type: 'button', class: className, onclick: () => {
    // Nothing to confirm until what it acts on is given: say what to give instead.
    const lacking = missing();
    if (lacking) {
      box.replaceChildren(` ${lacking}`);
      box.hidden = false;
      return;
    }
    box.replaceChildren(` ${question()} `,
      el('button', { type: 'button', class: 'confirm', onclick: () => { box.hidden = true; act(); } }, 'Yes, ' + label.toLowerCase()), ' ',
      el('button', { type: 'button', onclick: () => { box.hidden = true; } }, 'Cancel'));
    box.hidden = false;
  } }, label + '…');
  return [open, box];
}

let backupStarted = null;

/** A backup's or verify's progress, as the live stream pushes it. */
export function showProgress(p) {
  const state = document.getElementById('backup-state');
  if (!p.running) return;
  const seconds = backupStarted ? ` (${Math.round((Date.now() - backupStarted) / 1000)} s)` : '';
  state.textContent = `backing up to ${p.target}: ${p.phase}${p.total ? ` ${p.done} of ${p.total}` : ''}${seconds}`;
}

/** Backup now, to every configured target; its progress comes over the live stream. */
export async function backupNow(done) {
  const state = document.getElementById('backup-state'), list = document.getElementById('backup-result');
  const button = document.getElementById('backup-now');
  button.disabled = true;
  backupStarted = Date.now();
  state.textContent = 'backing up…';
  list.replaceChildren();
  try {
    const answer = await request('POST', '/v1/backups', {});
    state.textContent = answer.failed ? `${answer.failed} target(s) failed` : 'backup done';
    list.replaceChildren(...answer.targets.map((t) => el('li', { class: t.snapshot ? 'ok backup-snapshot' : 'warn', dataset: { snapshot: t.snapshot } },
      t.snapshot ? `${t.target}: snapshot ${t.snapshot}` : `${t.target}: failed: ${t.error}`)));
  } catch (e) {
    state.textContent = 'Backup failed: ' + e.message;
  } finally {
    backupStarted = null;
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
        `${dryRun ? 'Dry run' : 'Imported'}: ${a.format}, ${plural(a.records, 'record')} — ${a.create} new, ${a.update} changed, `
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
      + (a.after_restart.length ? `After the agent restarts: ${a.after_restart.join(', ')}.` : '')
      + (a.overridden_by_flags && a.overridden_by_flags.length
        ? ` Not used while the agent runs with flags that set them (hubsync run --listen, --api, --no-mdns…): ${a.overridden_by_flags.join(', ')}.` : '');
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
          ? `ok: ${plural(v.snapshots, 'snapshot')}, ${plural(v.packs, 'pack')}${v.packs_read ? `, ${v.packs_read} read (${bytesText(v.bytes_read)}), ${plural(v.blobs_checked, 'chunk')} checked` : ''}`
          : `${v.problems.length} problems: ${v.problems.join('; ')}`;
      } catch (e) {
        result.className = 'verify-result warn';
        result.textContent = 'Not verified: ' + e.message;
      } finally {
        button.disabled = false;
      }
    };
    const rows = t.snapshots.slice().reverse().map((s) => el('tr', { dataset: { snapshot: s.id } },
      el('td', {}, s.short_id), el('td', {}, new Date(s.time).toLocaleString()), el('td', {}, s.hostname),
      el('td', {}, String(s.records)), el('td', {}, `${bytesText(s.bytes)} (+${bytesText(s.added_bytes)})`)));
    const restore = restoreControls(t, i);
    return el('article', { class: 'conflict', dataset: { target: t.target } },
      el('h4', {}, t.target),
      t.error ? el('p', { class: 'warn' }, t.error) : null,
      (t.unreadable || []).map((u) => el('p', { class: 'warn' }, 'not used: ' + u)),
      rows.length ? el('table', {},
        el('thead', {}, el('tr', {}, ['Snapshot', 'Time', 'Host', 'Records', 'Size'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, rows)) : el('p', {}, 'No snapshots yet.'),
      el('p', {}, el('input', { type: 'checkbox', id: readId }), ' ', el('label', { for: readId }, 'read every pack (--read-data)'), ' ',
        el('button', { type: 'button', class: 'verify', onclick: (e) => verify(e.target) }, 'Verify')),
      result, t.snapshots.length ? restore : null);
  }));
}

/** A target's restores (one record, or everything into a new folder) and its drill. */
function restoreControls(t, i) {
  const ids = { snapshot: `restore-snapshot-${i}`, record: `restore-record-${i}`, into: `restore-into-${i}` };
  const result = el('p', { class: 'restore-result', role: 'status' });
  const snapshots = t.snapshots.slice().reverse();
  const pick = () => document.getElementById(ids.snapshot).value;
  const run = async (body, what) => {
    result.className = 'restore-result';
    result.textContent = what + '…';
    try {
      const a = await request('POST', '/v1/backups/restore', { target: t.target, snapshot: pick(), ...body });
      result.className = 'restore-result ok';
      result.textContent = a.mode === 'revert'
        ? `Restored ${a.record} to its value in snapshot ${a.snapshot.slice(0, 8)} (${a.writes} change${a.writes === 1 ? '' : 's'}, `
          + `${a.seconds.toFixed(1)} s); every device follows.`
        : `Restored snapshot ${a.snapshot.slice(0, 8)} (${plural(a.records, 'record')}) into ${a.into} in ${a.seconds.toFixed(1)} s, `
          + `as a new device ${a.device_id.split('-')[0]}: ${a.next}.`;
    } catch (e) {
      result.className = 'restore-result warn';
      result.textContent = 'Not restored: ' + e.message;
    }
  };
  const drill = async (button) => {
    button.disabled = true;
    result.className = 'restore-result';
    result.textContent = 'running a restore drill…';
    try {
      const d = await request('POST', '/v1/backups/drill', { target: t.target });
      result.className = 'restore-result ' + (d.ok ? 'ok' : 'warn');
      result.textContent = drillText(d);
    } catch (e) {
      result.className = 'restore-result warn';
      result.textContent = 'The drill failed: ' + e.message;
    } finally {
      button.disabled = false;
    }
  };
  const value = (id) => document.getElementById(id).value.trim();
  return el('div', { class: 'restore' },
    el('h5', {}, 'Restore'),
    el('p', {}, el('label', { for: ids.snapshot }, 'Snapshot'), ' ',
      el('select', { id: ids.snapshot }, snapshots.map((s) => el('option', { value: s.id }, `${s.short_id} (${new Date(s.time).toLocaleString()})`)))),
    el('p', {}, el('label', { for: ids.record }, 'One record (collection/ID)'), ' ',
      el('input', { id: ids.record, type: 'text', placeholder: 'memories/m42', class: 'restore-record' }), ' ',
      confirmed('Restore record', 'restore-one', () => `Write ${value(ids.record)} back to its value in snapshot `
        + `${pick().slice(0, 8)} on every device? Its later edits are overwritten (a new edit; the history stays).`,
      () => run({ record: value(ids.record) }, 'restoring the record'),
      () => (value(ids.record) ? null : 'Give the record first, as collection/ID (such as memories/m42).'))),
    el('p', {}, el('label', { for: ids.into }, 'Everything, into a new folder'), ' ',
      el('input', { id: ids.into, type: 'text', placeholder: '/home/me/hubsync-restored', class: 'restore-into' }), ' ',
      confirmed('Restore everything', 'restore-all', () => `Restore all of snapshot ${pick().slice(0, 8)} into `
        + `${value(ids.into)} as a new device? This device's store is not touched.`,
      () => run({ into: value(ids.into) }, 'restoring into the folder'),
      () => (value(ids.into) ? null : 'Give a new folder first: an absolute path, such as /home/me/hubsync-restored.'))),
    el('p', {}, el('button', { type: 'button', class: 'drill', onclick: (e) => drill(e.target) }, 'Run a drill'),
      ' restores the latest snapshot into a scratch store, checks it, and records the recovery time and point.'),
    result);
}
