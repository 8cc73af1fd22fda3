"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (standard library only).

Chromium started with --remote-debugging-pipe reads CDP commands from its fd 3 and writes
responses and events to its fd 4; every message is one JSON object terminated by a NUL byte.

    with Browser(extra_args=[...]) as browser:
        page = browser.new_page()
        page.navigate("https://127.0.0.1:8443/")
        print(page.evaluate("document.title"))
        page.screenshot("/tmp/page.png")

Page.evaluate raises JSException when the expression throws; page.exceptions and
page.console collect Runtime.exceptionThrown, Runtime.consoleAPICalled and Log.entryAdded as
they arrive.
"""

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time


class CDPError(Exception):
    """A CDP command failed (the browser answered with an error) or timed out."""


class JSException(CDPError):
    """Runtime.evaluate reported an exception thrown by the page's JavaScript."""


def find_chromium():
    """The chromium binary: $CHROMIUM, Debian's real binary (skipping the /usr/bin wrapper
    script, which adds extensions and API keys), or whatever is on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env
    for path in ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser",
                 "/usr/bin/google-chrome"):
        if os.access(path, os.X_OK):
            return path
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _high_fd(fd):
    """A copy of FD numbered 10 or more (the original is closed)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """One headless chromium process and its CDP pipe."""

    def __init__(self, chromium=None, extra_args=(), window_size=(1400, 1900), log_path=None,
                 user_data_dir=None):
        self.chromium = chromium or find_chromium()
        if not self.chromium:
            raise CDPError("no chromium binary found (set $CHROMIUM)")
        self._own_profile = user_data_dir is None
        self.user_data_dir = user_data_dir or tempfile.mkdtemp(prefix="dermfed-chromium-")
        args = [
            "--headless=new",
            "--remote-debugging-pipe",
            "--user-data-dir=" + self.user_data_dir,
            "--window-size=%d,%d" % window_size,
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--metrics-recording-only",
            "--mute-audio",
            "--hide-scrollbars",
            "--password-store=basic",
            "--use-mock-keychain",
        ]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # chromium refuses to run as root with its sandbox
        args += list(extra_args)
        args.append("about:blank")

        # Pipes: we write commands into to_r (chromium's fd 3) and read from from_w (its fd 4).
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()
        # Move the child's ends above 9 so that the shell's "3<&N 4>&M" cannot clobber them.
        to_r, from_w = _high_fd(to_r), _high_fd(from_w)
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        # bash (dash takes single-digit fds only) moves the two pipe ends to fds 3 and 4,
        # closes the originals, and execs chromium.
        script = 'exec "$0" "$@" 3<&%d 4>&%d %d<&- %d>&-' % (to_r, from_w, to_r, from_w)
        try:
            self.proc = subprocess.Popen(["/bin/bash", "-c", script, self.chromium] + args,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         pass_fds=(to_r, from_w), start_new_session=True)
        finally:
            os.close(to_r)
            os.close(from_w)
            if log is not subprocess.DEVNULL:
                log.close()

        self._next_id = 0
        self._id_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending = {}  # id -> queue.Queue(1)
        self._listeners = []  # (session_id or None, callback)
        self._listen_lock = threading.Lock()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True)
        self._reader.start()
        # The first command proves the pipe works.
        self.version = self.send("Browser.getVersion", timeout=60)

    # ---- transport ----
    def _read_loop(self):
        buf = b""
        try:
            while True:
                chunk = os.read(self._from_r, 1 << 20)
                if not chunk:
                    break
                buf += chunk
                while True:
                    end = buf.find(b"\0")
                    if end < 0:
                        break
                    raw, buf = buf[:end], buf[end + 1:]
                    try:
                        msg = json.loads(raw.decode("utf-8"))
                    except ValueError:
                        continue
                    self._dispatch(msg)
        except OSError:
            pass
        finally:
            self._closed.set()
            for q in list(self._pending.values()):
                try:
                    q.put_nowait({"error": {"message": "browser closed the pipe"}})
                except queue.Full:
                    pass

    def _dispatch(self, msg):
        if "id" in msg:
            q = self._pending.pop(msg["id"], None)
            if q is not None:
                q.put(msg)
            return
        session = msg.get("sessionId")
        with self._listen_lock:
            listeners = list(self._listeners)
        for want_session, callback in listeners:
            if want_session is None or want_session == session:
                try:
                    callback(msg)
                except Exception:  # a broken listener must not kill the reader
                    pass

    def add_listener(self, callback, session_id=None):
        with self._listen_lock:
            self._listeners.append((session_id, callback))

    def send(self, method, params=None, session_id=None, timeout=30):
        """Sends one command and waits for its result (a dict); raises CDPError on error."""
        if self._closed.is_set():
            raise CDPError("browser is closed (sending %s)" % method)
        with self._id_lock:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session_id:
            msg["sessionId"] = session_id
        q = queue.Queue(1)
        self._pending[mid] = q
        data = json.dumps(msg).encode("utf-8") + b"\0"
        with self._write_lock:
            try:
                view = memoryview(data)
                while view:
                    n = os.write(self._to_w, view)
                    view = view[n:]
            except OSError as e:
                self._pending.pop(mid, None)
                raise CDPError("cannot write to the browser: %s" % e)
        try:
            reply = q.get(timeout=timeout)
        except queue.Empty:
            self._pending.pop(mid, None)
            raise CDPError("%s: no answer in %s s" % (method, timeout))
        if "error" in reply:
            err = reply["error"]
            raise CDPError("%s: %s %s" % (method, err.get("message"), err.get("data", "")))
        return reply.get("result", {})

    # ---- pages ----
    def new_context(self):
        """A fresh incognito-like browser context (its own cookies); returns its id."""
        return self.send("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]

    def new_page(self, url="about:blank", browser_context=None):
        params = {"url": url}
        if browser_context:
            params["browserContextId"] = browser_context
        target = self.send("Target.createTarget", params)["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, target, session)

    def close(self, timeout=10):
        if self.proc.poll() is None and not self._closed.is_set():
            try:
                self.send("Browser.close", timeout=5)
            except CDPError:
                pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, 9)
            except OSError:
                self.proc.kill()
            self.proc.wait()
        for fd in (self._to_w, self._from_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._own_profile:
            shutil.rmtree(self.user_data_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    """One tab, attached in flat mode (its commands carry the session id)."""

    def __init__(self, browser, target_id, session_id):
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id
        self.exceptions = []   # Runtime.exceptionThrown: exceptionDetails dicts
        self.console = []      # (level, text) from Runtime.consoleAPICalled and Log.entryAdded
        self.navigations = []  # URLs of main-frame navigations (Page.frameNavigated)
        self.http_errors = []  # (status or error text, url): responses >= 400, failed loads
        self._requests = {}
        self._events = []
        self._cond = threading.Condition()
        browser.add_listener(self._on_event, session_id)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(domain + ".enable")

    def _on_event(self, msg):
        method = msg.get("method", "")
        params = msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.exceptions.append(params.get("exceptionDetails", {}))
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append((params.get("type", ""), text))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append((entry.get("level", ""), "%s: %s %s" % (
                entry.get("source", ""), entry.get("text", ""), entry.get("url", ""))))
        elif method == "Network.requestWillBeSent":
            self._requests[params.get("requestId")] = params.get("request", {}).get("url", "")
        elif method == "Network.responseReceived":
            resp = params.get("response", {})
            if resp.get("status", 0) >= 400:
                self.http_errors.append((resp.get("status"), resp.get("url", "")))
        elif method == "Network.loadingFailed":
            if not params.get("canceled"):
                self.http_errors.append((params.get("errorText", "failed"),
                                         self._requests.get(params.get("requestId"), "")))
        elif method == "Page.frameNavigated":
            frame = params.get("frame", {})
            if not frame.get("parentId"):
                self.navigations.append(frame.get("url", ""))
        with self._cond:
            self._events.append(msg)
            self._cond.notify_all()

    def send(self, method, params=None, timeout=30):
        return self.browser.send(method, params, self.session_id, timeout)

    def wait_event(self, method, predicate=None, timeout=30, since=0):
        """Waits for an event METHOD (index >= since) for which predicate(params) is true."""
        deadline = time.time() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self._events):
                    m = self._events[i]
                    i += 1
                    if m.get("method") == method and (predicate is None or predicate(m.get("params", {}))):
                        return m.get("params", {})
                left = deadline - time.time()
                if left <= 0:
                    raise CDPError("no %s event in %s s" % (method, timeout))
                self._cond.wait(left)

    def event_count(self):
        with self._cond:
            return len(self._events)

    def navigate(self, url, timeout=60):
        """Navigates and waits for the load event; returns the final URL."""
        mark = self.event_count()
        result = self.send("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise CDPError("navigating to %s: %s" % (url, result["errorText"]))
        self.wait_event("Page.loadEventFired", timeout=timeout, since=mark)
        return self.evaluate("location.href")

    def evaluate(self, expression, await_promise=True, timeout=30):
        """Evaluates EXPRESSION in the page and returns its value (JSON-serialisable)."""
        result = self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": await_promise,
            "userGesture": False}, timeout=timeout)
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text", "exception")
            raise JSException("%s\n  in: %s" % (text, expression[:300]))
        return result.get("result", {}).get("value")

    def wait_for(self, expression, timeout=30, interval=0.2):
        """Polls EXPRESSION until it is truthy; returns its value."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.evaluate(expression)
            if last:
                return last
            time.sleep(interval)
        raise CDPError("timed out after %s s waiting for: %s (last: %r)" % (timeout, expression, last))

    def screenshot(self, path, full_page=True):
        """Writes a PNG of the page. full_page: the viewport is stretched to the whole page
        for the capture (canvases below the fold are then painted like the rest; Chrome's
        captureBeyondViewport can miss them) and restored afterwards."""
        if full_page:
            metrics = self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics.get("contentSize")
            view = metrics.get("cssLayoutViewport") or metrics.get("layoutViewport")
            self.send("Emulation.setDeviceMetricsOverride", {
                "width": int(view["clientWidth"]), "height": int(max(size["height"], view["clientHeight"])),
                "deviceScaleFactor": 1, "mobile": False})
        try:
            # Two animation frames: layout, then paint at the new size.
            self.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
            data = self.send("Page.captureScreenshot", {"format": "png"}, timeout=60)["data"]
        finally:
            if full_page:
                self.send("Emulation.clearDeviceMetricsOverride")
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
