"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`).

Only the standard library: Chromium reads commands from fd 3 and writes replies and events to
fd 4, each a JSON message ended by a NUL byte. Enough to open a page, evaluate JavaScript in it,
collect its console errors and exceptions, and take a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self) -> None:
        self.profile = tempfile.TemporaryDirectory()
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()

        def as_fds_3_and_4() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
            read_end, write_end = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", f"--user-data-dir={self.profile.name}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=as_fds_3_and_4, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer, self._next_id, self.events = b"", 0, []

    def _receive(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def open(self, path: Path) -> Page:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session)
        page = Page(self, session)
        self.send("Page.navigate", session, url=path.resolve().as_uri())
        page.wait_for("document.readyState === 'complete'")
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except RuntimeError:
            pass
        self.process.wait(timeout=30)
        os.close(self._write)
        os.close(self._read)
        self.profile.cleanup()


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def evaluate(self, expression: str):
        result = self.browser.send("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition: str, tries: int = 200) -> None:
        for _ in range(tries):
            if self.evaluate(condition):
                return
            self.browser.send("Runtime.evaluate", self.session,
                              expression="new Promise(r => setTimeout(r, 25))", awaitPromise=True)
        raise TimeoutError(condition)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads reported for this page so far."""
        found = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:300])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args"))[:300])
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", "")[:300])
        return found

    def set_viewport(self, width: int, height: int = 768) -> None:
        """Lay the page out as a window of this size would (a laptop's 1366 x 768 by default)."""
        self.browser.send("Emulation.setDeviceMetricsOverride", self.session, width=width, height=height,
                          deviceScaleFactor=1, mobile=False)

    def screenshot(self, out: Path) -> Path:
        data = self.browser.send("Page.captureScreenshot", self.session, format="png", captureBeyondViewport=True)
        out.write_bytes(base64.b64decode(data["data"]))
        return out
