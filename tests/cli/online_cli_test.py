#!/usr/bin/env python3
"""Process test: the `online` provider as a user runs it.

An identity service (`portcullis serve` with [auth.online.service]) whose login providers are
the playground and a real webhook: a small HTTP server in this test (loopback, port 0) that
answers allow, deny, slow (past the service's timeout), 500, garbage, oversized and a redirect.
Devices log in (`portcullis login`), show their certificate (`whoami`), sync documents through
the service with it, a viewer's write is refused, and a revoked device is shut out once the
service re-reads its revocation list (`online revoke`, then SIGHUP).

Run by meson (suite `process`) with PORTCULLIS set to the built executable and
PORTCULLIS_PLUGIN_PATH to the folder of the online plugin. Every wait is bounded.
"""
import http.server
import json
import os
import signal
import stat
import threading
import time
import unittest

from server_process import ServerProcess, run

APP = "com.example.notes"
PLAYGROUND = "playground-token-0123456789"
TOKEN = "webhook-token-SECRET-42"
SLOW_SECONDS = 3


class Hook(http.server.BaseHTTPRequestHandler):
    """The application's webhook: the answer depends on the path."""
    requests = []

    def log_message(self, *args):
        pass

    def answer(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = min(int(self.headers.get("Content-Length", "0")), 1 << 20)
        request = json.loads(self.rfile.read(length))
        Hook.requests.append((self.path, request))
        ok = request.get("token") == TOKEN
        grant = {"authenticate": ok, "userID": "alice", "expirationSeconds": 600,
                 "roles": ["editor"], "clientInfo": {"plan": "pro"}}
        if self.path == "/allow":
            self.answer(200, json.dumps(grant).encode())
        elif self.path == "/viewer":
            grant.update(userID="victor", roles=["viewer"])
            self.answer(200, json.dumps(grant).encode())
        elif self.path == "/deny":
            self.answer(200, json.dumps({"authenticate": False}).encode())
        elif self.path == "/slow":
            time.sleep(SLOW_SECONDS)
            self.answer(200, json.dumps(grant).encode())
        elif self.path == "/500":
            self.answer(500, b"internal error")
        elif self.path == "/garbage":
            self.answer(200, b"<html>not json</html>")
        elif self.path == "/oversized":
            self.answer(200, json.dumps({**grant, "pad": "x" * (100 << 10)}).encode())
        elif self.path == "/redirect":
            self.answer(302, b"", headers=[("Location", "/allow")])
        else:
            self.answer(404, b"")


class OnlineCliTest(ServerProcess, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        cls.hook.daemon_threads = True
        threading.Thread(target=cls.hook.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.hook.shutdown()
        cls.hook.server_close()

    def setUp(self):
        self.make_folder("portcullis-online-")
        Hook.requests = []
        _, out, _ = run("keygen", "--out", self.path("service.key"), "--json")
        self.service_key = json.loads(out)["public"]
        with open(self.path("playground.token"), "w") as f:
            f.write(PLAYGROUND + "\n")
        self.address = self.serve()

    def online_table(self, name):
        return (f'[auth]\nprovider = "online"\n[auth.online]\napp-id = "{APP}"\n'
                f'identity = "{self.path(name + ".key")}"\n'
                f'service-keys = ["{self.service_key}"]\nclock-skew = 5\n')

    def serve(self):
        port = self.hook.server_address[1]
        hooks = "".join(
            f'[auth.online.service.login.hook-{p}]\ntype = "webhook"\n'
            f'url = "http://127.0.0.1:{port}/{p}"\ntimeout = 1000\n'
            for p in ["allow", "viewer", "deny", "slow", "500", "garbage", "oversized",
                      "redirect"])
        config = self.path("service.toml")
        with open(config, "w") as f:
            f.write(f'[network]\nlisten = "127.0.0.1:0"\n[storage]\npath = "{self.path("data")}"\n'
                    + self.online_table("service-node")
                    + f'revocations = "{self.path("revocations.bin")}"\n'
                    f'[auth.online.service]\nsigning-key = "{self.path("service.key")}"\n'
                    f'lifetime = 3600\n'
                    f'[auth.online.service.roles.editor]\nwrite = ["*"]\n'
                    f'[auth.online.service.roles.viewer]\nread = ["*"]\n'
                    f'[auth.online.service.login.dev]\ntype = "playground"\n'
                    f'token-file = "{self.path("playground.token")}"\n' + hooks)
        ready = self.serve_config(config)
        self.assertIn("~shs:", ready["dial"][0])
        return ready["dial"][0]

    def device(self, name):
        config = self.path(name + ".toml")
        with open(config, "w") as f:
            f.write(self.online_table(name) + f'certificate = "{self.path(name + ".cert")}"\n')
        return config

    def login(self, config, provider, token, check=True):
        return run("login", "--config", config, "--service", self.address, "--provider",
                   provider, "--token", token, "--json", "--timeout", "10", check=check)

    def doc(self, config, verb, *args, check=True):
        return run("doc", verb, "--config", config, "--connect", self.address, "--timeout", "15",
                   *args, check=check)

    def test_playground_login_keeps_a_certificate_that_syncs(self):
        alice = self.device("alice")
        _, out, _ = self.login(alice, "dev", PLAYGROUND)
        login = json.loads(out)
        self.assertEqual(login["write"], ["*"])
        self.assertEqual(stat.S_IMODE(os.stat(self.path("alice.cert")).st_mode), 0o600)
        _, out, _ = run("whoami", "--config", alice, "--json")
        me = json.loads(out)
        self.assertTrue(me["valid"])
        self.assertEqual(me["roles"], ["playground"])
        self.assertIn("playground", self.log())  # the start-up warning
        _, out, _ = self.doc(alice, "new", "--json")
        url = json.loads(out)["url"]
        self.doc(alice, "set", url, "/title", '"minutes"')
        # A second device reads it through the service.
        bob = self.device("bob")
        self.login(bob, "dev", PLAYGROUND)
        _, out, _ = self.doc(bob, "get", url, "--json")
        self.assertEqual(json.loads(out)["title"], "minutes")

    def test_a_wrong_playground_token_is_refused(self):
        code, _, err = self.login(self.device("eve"), "dev", "not-the-token-at-all", check=False)
        self.assertEqual(code, 1)
        self.assertIn("did not accept", err)
        self.assertFalse(os.path.exists(self.path("eve.cert")))

    def test_a_webhook_login_carries_the_answer(self):
        alice = self.device("alice")
        with open(self.path("token"), "w") as f:
            f.write(TOKEN + "\n")
        _, out, _ = self.login(alice, "hook-allow", "@" + self.path("token"))
        login = json.loads(out)
        self.assertEqual(login["user"], "alice")
        self.assertEqual(login["roles"], ["editor"])
        self.assertEqual(login["clientInfo"], {"plan": "pro"})
        path, request = Hook.requests[-1]
        self.assertEqual(path, "/allow")
        self.assertEqual(request["appId"], APP)
        self.assertEqual(request["provider"], "hook-allow")
        _, who, _ = run("whoami", "--config", alice, "--json")
        self.assertEqual(request["peerKey"], json.loads(who)["device"])

    def test_every_bad_webhook_answer_denies_and_is_logged_without_the_token(self):
        for hook in ["deny", "slow", "500", "garbage", "oversized", "redirect"]:
            with self.subTest(hook=hook):
                start = time.monotonic()
                code, _, err = self.login(self.device("d-" + hook), "hook-" + hook, TOKEN,
                                          check=False)
                self.assertEqual(code, 1, err)
                self.assertIn("did not accept", err)
                # The slow hook is cut at the service's 1 s timeout, not after its 3 s.
                self.assertLess(time.monotonic() - start, SLOW_SECONDS + 2)
        # The redirect was not followed: /allow saw no request.
        self.assertNotIn("/allow", [p for p, _ in Hook.requests])
        # The service's log says why, once each, and never shows the token.
        log = self.log()
        self.assertNotIn(TOKEN, log)
        reasons = {"deny": "refused the token", "slow": "timeout", "500": "status 500",
                   "garbage": "malformed", "oversized": "over the limit",
                   "redirect": "redirect not followed"}
        for hook, reason in reasons.items():
            lines = [l for l in log.splitlines() if f"with 'hook-{hook}' refused" in l]
            self.assertEqual(len(lines), 1, log)
            self.assertIn(reason, lines[0])

    def test_a_viewers_write_is_refused_and_a_revoked_device_is_shut_out(self):
        alice, victor = self.device("alice"), self.device("victor")
        self.login(alice, "hook-allow", TOKEN)
        self.login(victor, "hook-viewer", TOKEN)
        _, out, _ = self.doc(alice, "new", "--json")
        url = json.loads(out)["url"]
        self.doc(alice, "set", url, "/v", '"by alice"')
        # The viewer reads but may not write.
        _, out, _ = self.doc(victor, "get", url, "--json")
        self.assertEqual(json.loads(out)["v"], "by alice")
        code, _, err = self.doc(victor, "set", url, "/v", '"by victor"', check=False)
        self.assertEqual(code, 1)
        self.assertIn("refused by the server", err)
        # Revoked: after the service re-reads its list, alice's certificate opens nothing.
        _, who, _ = run("whoami", "--config", alice, "--json")
        serial = str(json.loads(who)["serial"])
        _, out, _ = run("online", "revoke", "--config", self.path("service.toml"), "--serial",
                        serial, "--json")
        self.assertEqual(json.loads(out)["sequence"], 1)
        self.server.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "revocation list 1" not in self.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        code, _, err = self.doc(alice, "get", url, "--json", check=False)
        self.assertEqual(code, 1, err)
        self.assertIn("handshake failed", err)
        # Logging in again asks the identity provider again, and works.
        self.login(alice, "hook-allow", TOKEN)
        self.doc(alice, "get", url, "--json")

    def test_a_device_without_a_certificate_is_told_to_log_in(self):
        code, _, err = self.doc(self.device("newcomer"), "new", check=False)
        self.assertEqual(code, 2)
        self.assertIn("portcullis login", err)
        code, _, err = run("whoami", "--config", self.device("newcomer"), check=False)
        self.assertEqual(code, 1)
        self.assertIn("portcullis login", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
