#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's chromium, headless, driven by Selenium through
chromedriver, against two real agents on loopback (started by Tests/CLITests/DashboardBrowserTests.swift).

Usage: dashboard_test.py --hubsync BIN --a DATA --b DATA --a-listen HOST:PORT --repo local:PATH --out DIR

Each step waits for a condition (WebDriverWait on an element or text, or a poll of the CLI with a
deadline), never a fixed sleep. Screenshots of every tab go to DIR. chromium and chromedriver are
ended by PID when the run ends, also when it fails. Exits 0 when every check passed, 1 otherwise.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 60  # seconds for any one condition: a loaded 2-core machine is slow, a hang still ends


def log(text):
    print(f"dashboard_test: {text}", flush=True)


class Checks:
    def __init__(self, args):
        self.args = args
        self.failures = []

    def hubsync(self, data, *argv, ok=True):
        r = subprocess.run([self.args.hubsync, *argv, "--data", data], capture_output=True, text=True, timeout=120)
        if ok and r.returncode != 0:
            raise AssertionError(f"hubsync {' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
        return r

    def hubsync_json(self, data, *argv):
        return json.loads(self.hubsync(data, *argv, "--json").stdout)

    def check(self, condition, what):
        if condition:
            log(f"ok: {what}")
        else:
            log(f"FAILED: {what}")
            self.failures.append(what)


def poll(condition, what, timeout=WAIT):
    """Polls `condition` (a function) until it answers true, or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)  # the pace of a poll with a deadline, not a wait for an event


def start_browser(out, profile):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--metrics-recording-only", "--disable-default-apps", "--disable-extensions", "--disable-breakpad",
                 "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--disable-crash-reporter",
                 "--no-pings", "--password-store=basic", "--use-mock-keychain", "--disable-dev-shm-usage",
                 "--window-size=1280,900", f"--user-data-dir={profile}",
                 # A foreign name that resolves to this machine (DNS rebinding), and no other lookups at all.
                 "--host-resolver-rules=MAP rebind.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]:
        options.add_argument(flag)
    # chromedriver on a port the OS gives (Selenium binds port 0 to find one), on loopback.
    service = Service(executable_path="/usr/bin/chromedriver", port=0,
                      service_args=["--allowed-ips=127.0.0.1", f"--log-path={out}/chromedriver.log"])
    downloads = os.path.join(out, "downloads")
    os.makedirs(downloads, exist_ok=True)
    options.add_experimental_option("prefs", {"download.default_directory": downloads, "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=service, options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    return driver, service


def stop_browser(driver, service):
    pids = []
    try:
        if service and service.process:
            pids.append(service.process.pid)
    except Exception:
        pass
    try:
        if driver:
            driver.quit()
    except Exception as e:
        log(f"driver.quit failed: {e}")
    # chromedriver (and, through it, chromium) by PID, when quit left it running.
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def text_of(driver, css):
    try:
        return driver.find_element(By.CSS_SELECTOR, css).text
    except Exception:
        return ""


def wait_text(driver, css, fragment, timeout=WAIT):
    WebDriverWait(driver, timeout).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), fragment),
                                         f"'{fragment}' in {css}; it shows: {text_of(driver, css)!r}")


def wait_css(driver, css, timeout=WAIT):
    return WebDriverWait(driver, timeout).until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)), f"{css} shown")


def open_tab(driver, name):
    driver.find_element(By.ID, f"tab-{name}").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, name).is_displayed(), f"the {name} tab shown")


def shot(driver, out, name):
    path = os.path.join(out, f"dashboard-{name}.png")
    driver.save_screenshot(path)
    log(f"screenshot {path}")


def sign_in(c, driver, data):
    url = c.hubsync_json(data, "dashboard")["url"]
    driver.get(url)
    wait_css(driver, "#cards .card")
    return url


def run(c, driver):
    a, b, out = c.args.a, c.args.b, c.args.out
    base = "http://" + c.args.a_api

    # 1. Refused without sign-in, and from a foreign Host.
    driver.get(base + "/")
    wait_text(driver, "#signin-message", "Not signed in")
    c.check(not driver.find_element(By.ID, "tabs").is_displayed(), "without sign-in the page shows no tabs")
    shot(driver, out, "refused")
    driver.get(base + "/v1/status")
    c.check("no dashboard session" in driver.find_element(By.TAG_NAME, "body").text, "GET /v1/status without a session is refused")
    port = c.args.a_api.rsplit(":", 1)[1]
    driver.get(f"http://rebind.test:{port}/")
    wait_text(driver, "#refusal", "not by a loopback address")
    shot(driver, out, "foreign-host")
    driver.get(f"http://rebind.test:{port}/v1/status")
    c.check("not by a loopback address" in driver.find_element(By.TAG_NAME, "body").text,
            "the API refuses a foreign Host too")
    driver.get(base + "/#code=00112233445566778899aabbccddeeff")
    wait_text(driver, "#signin-message", "not one this agent gave")

    # 2. Sign in by the printed URL; the code leaves the address bar; a second use is refused.
    url = sign_in(c, driver, a)
    c.check("code=" not in driver.current_url, f"the code left the address bar ({driver.current_url})")
    cookies = [k for k in driver.get_cookies() if k["name"] == f"hubsync_session_{port}"]
    c.check(len(cookies) == 1 and cookies[0].get("httpOnly") and cookies[0].get("sameSite") == "Strict",
            f"the session cookie is HttpOnly and SameSite=Strict ({cookies})")
    c.check(driver.execute_script("return document.cookie") == "", "page scripts cannot read the session cookie")
    driver.get(url)
    wait_text(driver, "#signin-message", "used already")
    driver.get(base + "/")
    wait_css(driver, "#cards .card")
    # A write without the CSRF token is refused, though the cookie goes with it.
    refused = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/v1/records/memories/csrf', {method: 'PATCH', headers: {'Content-Type': 'application/json'},
          body: JSON.stringify({text: 'x'})}).then(async r => done([r.status, await r.text()]));""")
    c.check(refused[0] == 403 and "CSRF" in refused[1], f"a write without the CSRF token is refused ({refused})")

    # 3. The cards show the same figures as `status --json`.
    def cards_match():
        status = c.hubsync_json(a, "status")
        expected = {f"records.{k}": str(v) for k, v in status["store"]["records"].items()}
        expected["conflicts"] = str(status["store"]["conflicts"])
        connected = sum(1 for p in status["peers"] if p["connected"])
        expected["peers"] = f"{connected} of {len(status['peers'])}"
        # Read in one script: the live stream may rebuild the cards between two element reads.
        cards = driver.execute_script(
            "return [...document.querySelectorAll('#cards .card')].map(e => [e.dataset.stat, "
            "e.querySelector('.figure').textContent, e.dataset.bytes ?? null, e.dataset.quota ?? null])")
        shown = {stat: figure for stat, figure, _, _ in cards}
        # Storage: the exact bytes the card carries (its figure is rounded for people).
        expected["bytes:storage.store"] = str(status["storage"]["store_bytes"])
        for i, t in enumerate(status["storage"]["targets"]):
            expected[f"bytes:storage.target.{i}"] = None if t["repository_bytes"] is None else str(t["repository_bytes"])
            expected[f"quota:storage.target.{i}"] = None if t["peer_quota_bytes"] is None else str(t["peer_quota_bytes"])
        for stat, _, size, quota in cards:
            if stat.startswith("storage."):
                shown["bytes:" + stat] = size
                shown["quota:" + stat] = quota
        missing = {k: (v, shown.get(k)) for k, v in expected.items() if shown.get(k) != v}
        return (not missing, missing)

    def check_cards(what):
        try:
            poll(lambda: cards_match()[0], "the cards to equal status --json")
            c.check(True, what)
        except AssertionError:
            c.check(False, f"{what}: differing {cards_match()[1]}")
    check_cards("the cards equal `hubsync status --json`")
    shot(driver, out, "overview")

    # 4. Invite: the code shown lets a second device join.
    open_tab(driver, "household")
    driver.find_element(By.ID, "invite").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "invite-code").text.strip() != "", "an invite code")
    code = driver.find_element(By.ID, "invite-code").text.strip()
    c.check(":" in text_of(driver, "#invite-expiry"), "the invite's expiry counts down")
    shot(driver, out, "household-invite")
    c.hubsync(b, "pair", "join", code, "--host", c.args.a_listen)
    wait_text(driver, "#invite-state", "joined")
    c.check(True, "the invite's code let a second device join")
    poll(lambda: any(p["connected"] for p in c.hubsync_json(a, "status")["peers"]), "the two devices to connect")
    wait_css(driver, "#member-list li button.remove")
    shot(driver, out, "household")

    # 5. The conflict (both devices wrote personas/ada apart): resolved in the page, ended on both.
    poll(lambda: len(c.hubsync_json(a, "conflicts")) == 2 and len(c.hubsync_json(b, "conflicts")) == 2, "both conflicts on both devices")
    open_tab(driver, "conflicts")
    article = wait_css(driver, 'article.conflict[data-record="personas/ada"]')
    shot(driver, out, "conflicts")
    chosen = json.loads(article.find_element(By.CSS_SELECTOR, ".version pre").text)
    names = article.find_element(By.CSS_SELECTOR, ".versions").text
    c.check("Alpha" in names and "Beta" in names, f"the values show their device names ({names!r})")
    article.find_element(By.CSS_SELECTOR, "button.keep").click()
    wait_text(driver, "#conflicts-message", "Resolved personas/ada name")
    WebDriverWait(driver, WAIT).until(lambda d: not d.find_elements(By.CSS_SELECTOR, 'article.conflict[data-record="personas/ada"]'),
                                      "the conflict gone from the page")
    poll(lambda: all(x["id"] != "ada" for x in c.hubsync_json(a, "conflicts") + c.hubsync_json(b, "conflicts")),
         "the conflict to end on both devices")
    poll(lambda: c.hubsync_json(b, "get", "personas", "ada")["fields"].get("name") == chosen,
         f"device B to hold the chosen value {chosen!r}")
    c.check(True, "resolving the conflict in the page ended it on both devices")
    # The other conflict (personas/bob): a value written in the page, neither device's.
    # Focus in the list keeps it from being rebuilt while the value is written (changes arrive live).
    bob = 'article.conflict[data-record="personas/bob"]'
    WebDriverWait(driver, WAIT).until(
        lambda d: d.execute_script(f"const t = document.querySelector('{bob} textarea'); if (t) t.focus(); "
                                   "return t !== null && document.activeElement === t"), "the written value's field focused")
    field = driver.switch_to.active_element
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys('"Bob, as agreed"')
    field.send_keys(Keys.TAB)
    c.check("write" in (driver.switch_to.active_element.get_attribute("class") or ""), "Tab moves from the value to its button")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait_text(driver, "#conflicts-message", "Resolved personas/bob name")
    poll(lambda: not c.hubsync_json(a, "conflicts") and not c.hubsync_json(b, "conflicts"), "the written conflict to end on both devices")
    poll(lambda: c.hubsync_json(b, "get", "personas", "bob")["fields"].get("name") == "Bob, as agreed",
         "device B to hold the written value")
    c.check(True, "a value written in the page resolved the conflict on both devices")

    # 6. Sync now runs a repair round, on either device.
    def sync_now():
        open_tab(driver, "devices")
        driver.find_element(By.ID, "sync-now").click()
        wait_text(driver, "#sync-state", "done")
        return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#sync-result li.repair-round")]
    rounds = sync_now()
    shot(driver, out, "devices")
    c.check(rounds and "repair round" in rounds[0], f"Sync now shows a repair round ({rounds[0] if rounds else text_of(driver, '#sync-result')})")
    # And on B, whichever device dialled the session.
    sign_in(c, driver, b)
    other = sync_now()
    c.check(other and "repair round" in other[0], f"Sync now on the other device shows a repair round too ({other[0] if other else text_of(driver, '#sync-result')})")
    driver.get(base + "/")
    wait_css(driver, "#cards .card")

    # 7. Backup now: a snapshot that `backup list` shows.
    c.hubsync(a, "put", "memories", "r1", "--json", json.dumps({"text": "as backed up"}))
    open_tab(driver, "backups")
    driver.find_element(By.ID, "backup-now").click()
    item = wait_css(driver, "#backup-result li.backup-snapshot")
    snapshot = item.get_attribute("data-snapshot")
    listed = c.hubsync_json(a, "backup", "list", "--repo", c.args.repo)
    ids = [s.get("id", "") for s in listed]
    c.check(any(snapshot.startswith(i) or i.startswith(snapshot) for i in ids if i),
            f"Backup now made snapshot {snapshot[:12]}, which `backup list` shows ({[i[:12] for i in ids]})")
    wait_text(driver, "#backup-last", "snapshot")
    row = wait_css(driver, f'#snapshot-list tr[data-snapshot="{snapshot}"]')
    c.check("Invalid" not in row.text, f"the snapshot is listed in the page with its time ({row.text!r})")
    driver.find_element(By.CSS_SELECTOR, "#snapshot-list input[type=checkbox]").click()
    driver.find_element(By.CSS_SELECTOR, "#snapshot-list button.verify").click()
    wait_text(driver, "#snapshot-list .verify-result", "ok:")
    c.check("read" in text_of(driver, "#snapshot-list .verify-result"), f"verify read the data ({text_of(driver, '#snapshot-list .verify-result')})")
    shot(driver, out, "backups")

    # 7b. Restore one record to the snapshot's value, after a confirmation.
    c.hubsync(a, "put", "memories", "r1", "--json", json.dumps({"text": "changed later"}))
    driver.find_element(By.CSS_SELECTOR, "#snapshot-list input.restore-record").send_keys("memories/r1")
    driver.find_element(By.CSS_SELECTOR, "#snapshot-list button.restore-one").click()
    confirm = wait_css(driver, "#snapshot-list button.confirm")
    c.check(c.hubsync_json(a, "get", "memories", "r1")["fields"]["text"] == "changed later", "nothing is restored before the confirmation")
    shot(driver, out, "backups-restore-confirm")
    confirm.click()
    wait_text(driver, "#snapshot-list .restore-result", "Restored memories/r1")
    poll(lambda: c.hubsync_json(a, "get", "memories", "r1")["fields"]["text"] == "as backed up", "memories/r1 back to its backed-up value")
    c.check(True, "one record restored from the snapshot")
    driver.find_element(By.CSS_SELECTOR, "#snapshot-list button.drill").click()
    wait_text(driver, "#drill-last", "recovery time")
    c.check("recovery point" in text_of(driver, "#drill-last"), f"the last drill's recovery time and point ({text_of(driver, '#drill-last')})")
    shot(driver, out, "backups-restored")

    # 8. Activity: the live feed and the audit journal, filterable.
    open_tab(driver, "activity")
    wait_css(driver, "#audit-list li")
    c.hubsync(a, "put", "memories", "live-note", "--json", json.dumps({"text": "seen live"}))
    wait_text(driver, "#change-feed", "memories/live-note")
    wait_text(driver, "#audit-list", "pairing")
    field = driver.find_element(By.ID, "activity-filter")
    field.send_keys("backup")
    # The list is rebuilt as the filter changes: its texts are read in one script, not element by element.
    audit_texts = "return [...document.querySelectorAll('#audit-list li')].map(li => li.textContent.toLowerCase())"
    WebDriverWait(driver, WAIT).until(
        lambda d: (lambda texts: texts and all("backup" in t for t in texts))(d.execute_script(audit_texts)),
        "the audit journal filtered to backups")
    c.check(not any("pairing" in t for t in driver.execute_script(audit_texts)), "the filter leaves out the other entries")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.BACKSPACE)
    wait_text(driver, "#audit-list", "pairing")
    c.check(True, "the audit journal filters, and shows everything again when the filter is emptied")
    shot(driver, out, "activity")

    # 9. Migration: the dry run's report first, then the import.
    open_tab(driver, "migration")
    notes = os.path.join(out, "notes.md")
    with open(notes, "w") as f:
        f.write("# Notes\n\n- Ada likes tea\n- Ada plays chess\n")
    driver.find_element(By.ID, "import-file").send_keys(notes)
    driver.find_element(By.ID, "import-persona").send_keys("ada")
    driver.find_element(By.ID, "import-check").click()
    wait_css(driver, "#dry-run-report")
    c.check("Dry run" in text_of(driver, "#dry-run-report"), "the dry run reports first")
    before = len(c.hubsync_json(a, "list", "memories"))
    driver.find_element(By.ID, "import-run").click()
    wait_css(driver, "#import-done")
    after = len(c.hubsync_json(a, "list", "memories"))
    c.check(after > before, f"the import wrote memories ({before} → {after})")
    shot(driver, out, "migration")

    # 9b. Export: the link downloads the file `hubsync export` writes.
    downloads = os.path.join(out, "downloads")
    driver.find_element(By.ID, "export").click()
    done = poll(lambda: [f for f in os.listdir(downloads) if f.endswith(".jsonl")], "the export to download")
    with open(os.path.join(downloads, done[0])) as f:
        downloaded = f.read()
    cli_file = os.path.join(out, "cli-export.jsonl")
    c.hubsync(a, "export", cli_file)
    with open(cli_file) as f:
        cli = f.read()
    records = lambda text: sorted(l for l in text.splitlines()[1:] if not l.startswith('{"collection":"audit"'))
    c.check(records(downloaded) == records(cli) and records(cli), f"the downloaded export ({done[0]}) holds what `hubsync export` writes")

    # 9c. Live: a write through the API shows on the Overview with no reload and no poll.
    open_tab(driver, "overview")
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "live", "the live stream open")
    t0 = driver.execute_script("window.hubsyncMarker = 'no reload'; return performance.now()")
    count = c.hubsync_json(a, "status")["store"]["records"]["memories"]
    c.hubsync(a, "put", "memories", "sse-check", "--json", json.dumps({"text": "pushed"}))
    wait_css(driver, f'#cards .card[data-stat="records.memories"]')
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_element(By.CSS_SELECTOR, '#cards .card[data-stat="records.memories"] .figure').text == str(count + 1),
        "the memories card to count the new record")
    c.check(driver.execute_script("return window.hubsyncMarker") == "no reload", "the page was not reloaded")
    polled = driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/v1/status') && e.startTime > arguments[0]).length", t0)
    c.check(polled == 0, f"the update came over the live stream, not a read of /v1/status ({polled} reads)")
    shot(driver, out, "overview-live")

    # 10. Settings: config.json checked as at start; a refused text leaves the file as it was.
    open_tab(driver, "settings")
    config_path = os.path.join(a, "config.json")
    with open(config_path) as f:
        original = f.read()
    WebDriverWait(driver, WAIT).until(lambda d: "backup" in d.find_element(By.ID, "config-text").get_attribute("value"),
                                      "config.json's text in the page")
    area = driver.find_element(By.ID, "config-text")
    area.clear()
    area.send_keys('{"repair_interval_seconds": "often"}')
    driver.find_element(By.ID, "config-save").click()
    wait_text(driver, "#config-message", "Not saved")
    c.check("repair_interval_seconds" in text_of(driver, "#config-message"), f"the refusal names the setting ({text_of(driver, '#config-message')})")
    with open(config_path) as f:
        c.check(f.read() == original, "a refused config.json is not written")
    settings = json.loads(original)
    settings["repair_interval_seconds"] = 321
    area.clear()
    area.send_keys(json.dumps(settings))
    driver.find_element(By.ID, "config-save").click()
    wait_text(driver, "#config-message", "Saved")
    poll(lambda: c.hubsync_json(a, "status")["repair_interval_seconds"] == 321, "the new repair interval in status")
    c.check(True, "a setting saved in the page applies at once")
    shot(driver, out, "settings")

    # Phone width: still readable, every tab reachable.
    driver.set_window_size(390, 844)
    open_tab(driver, "overview")
    shot(driver, out, "overview-phone")
    width = driver.execute_script("return document.documentElement.scrollWidth")
    c.check(width <= 400, f"no sideways scrolling at phone width (page {width} px wide)")

    # Keyboard: arrow keys move between tabs.
    driver.set_window_size(1280, 900)
    driver.find_element(By.ID, "tab-overview").send_keys("\ue014")  # ArrowRight
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "devices").is_displayed(), "ArrowRight to Devices")
    c.check(driver.switch_to.active_element.get_attribute("id") == "tab-devices", "the keyboard moves between tabs")

    # The cards again, with a peer connected and a backup taken; this screenshot is docs/dashboard.png.
    open_tab(driver, "overview")
    check_cards("the cards still equal `hubsync status --json` with a peer and a backup")
    shot(driver, out, "overview-final")

    # Household: remove B, after its confirmation; it leaves A's trusted devices.
    b_id = c.hubsync(b, "id").stdout.strip()
    open_tab(driver, "household")
    item = wait_css(driver, f'#member-list li[data-device="{b_id}"]')
    item.find_element(By.CSS_SELECTOR, "button.remove").click()
    confirm = wait_css(driver, f'#member-list li[data-device="{b_id}"] button.confirm-remove')
    c.check(any(p["device_id"] == b_id for p in c.hubsync_json(a, "status")["peers"]), "nothing is removed before the confirmation")
    shot(driver, out, "household-remove-confirm")
    confirm.click()
    WebDriverWait(driver, WAIT).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f'#member-list li[data-device="{b_id}"]'),
                                      "B gone from the member list")
    poll(lambda: all(p["device_id"] != b_id for p in c.hubsync_json(a, "status")["peers"]), "B to leave A's trusted devices")
    c.check(True, "a member removed after its confirmation")
    shot(driver, out, "household-removed")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hubsync", required=True)
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--a-api", required=True)
    p.add_argument("--a-listen", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    # SIGTERM ends the run through the `finally` below, which stops the browser.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    os.environ["SE_AVOID_STATS"] = "true"  # Selenium Manager sends no usage statistics
    log(f"screenshots and logs go to {args.out}")
    c = Checks(args)
    driver = service = None
    profile = tempfile.mkdtemp(prefix="hubsync-chromium-")
    try:
        driver, service = start_browser(args.out, profile)
        run(c, driver)
    except Exception as e:
        traceback.print_exc()
        c.failures.append(f"{type(e).__name__}: {e}")
        if driver:
            try:
                shot(driver, args.out, "failure")
            except Exception:
                pass
    finally:
        stop_browser(driver, service)
        shutil.rmtree(profile, ignore_errors=True)
    if c.failures:
        log(f"{len(c.failures)} failed: " + "; ".join(c.failures))
        return 1
    log("every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
