#!/usr/bin/env python3
"""Process tests of `portcullis serve` as a newcomer meets it: the uninstalled tool of a build
tree finds that build's plugins without PORTCULLIS_PLUGIN_PATH, its ready lines give the address
clients dial, a config without [auth] is refused, every config error names the file, line and
key, and the dials of its `connect` list are logged.

Run by meson (suite `process`) with PORTCULLIS set to the built executable and
PORTCULLIS_BUILD_ROOT to its build folder. Servers listen on 127.0.0.1 port 0; every wait is
bounded.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

EXE = os.environ.get("PORTCULLIS", "portcullis")
BUILD_ROOT = os.environ.get("PORTCULLIS_BUILD_ROOT", "")


def bare_env(**extra):
    """The environment without PORTCULLIS_PLUGIN_PATH: the tool must find its plugins itself."""
    env = {k: v for k, v in os.environ.items() if k != "PORTCULLIS_PLUGIN_PATH"}
    env.update(extra)
    return env


def run(*args, timeout=30, env=None):
    p = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout,
                       env=env or bare_env())
    return p.returncode, p.stdout, p.stderr


def free_address():
    """A loopback HOST:PORT nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % probe.getsockname()[1]


class Serve:
    """`portcullis serve --config FILE` until stop(); `ready` is its first stdout line."""

    def __init__(self, config, json_output=True, env=None):
        self.folder = os.path.dirname(config)
        self.log_path = config + ".log"
        self.stderr = open(self.log_path, "w")
        args = [EXE, "serve", "--config", config] + (["--json"] if json_output else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     env=env or bare_env())
        self.ready = self.proc.stdout.readline()  # bounded: serve exits on any start-up error
        if not self.ready:
            self.proc.wait(timeout=10)
            raise AssertionError(f"serve did not start: {self.log()}")

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_for_log(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log())
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no /{pattern}/ in the log within {timeout} s:\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc.stdout.close()
        self.stderr.close()


class ServeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portcullis-serve-")
        self.running = []

    def tearDown(self):
        for s in self.running:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(timeout=10)
            s.proc.stdout.close()
            s.stderr.close()
        if sys.exc_info()[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def serve(self, config, **kw):
        s = Serve(config, **kw)
        self.running.append(s)
        return s

    def shared_key_table(self, name, network="ab" * 32):
        key = os.path.join(self.dir, name + ".key")
        code, _, err = run("keygen", "--out", key)
        self.assertEqual(code, 0, err)
        return (f'[auth]\nprovider = "shared-key"\n[auth.shared-key]\n'
                f'network-key = "{network}"\nidentity = "{key}"\n')

    def node(self, name, auth, network='listen = "127.0.0.1:0"\n'):
        return self.write(name + ".toml",
                          f'[network]\n{network}[storage]\npath = "{name}-data"\n{auth}')

    def assert_config_error(self, text, pattern, code=2):
        path = self.write("bad.toml", text)
        got, out, err = run("serve", "--config", path)
        self.assertEqual(got, code, err)
        self.assertEqual(out, "")
        # One line says why, the last; a provider made before the failure may have logged first.
        said = [line for line in err.splitlines() if line.startswith("portcullis: ")]
        self.assertEqual(len(said), 1, err)
        self.assertTrue(err.endswith(said[0] + "\n"), err)
        self.assertRegex(said[0] + "\n", "^portcullis: " + re.escape(path) + pattern)
        return said[0]

    # --- plugins from the build tree -------------------------------------------------------

    def test_the_uninstalled_tool_loads_its_builds_plugins_without_a_plugin_path(self):
        for provider in ("shared-key", "document-id"):
            if provider == "shared-key":
                server_auth, client_auth = self.shared_key_table("s"), self.shared_key_table("c")
            else:
                table = '[auth]\nprovider = "document-id"\n[auth.document-id]\nidentity = "{}"\n'
                server_auth = table.format(os.path.join(self.dir, "dis.key"))
                client_auth = table.format(os.path.join(self.dir, "dic.key"))
            s = self.serve(self.node(provider, server_auth))
            ready = json.loads(s.ready)
            self.assertEqual(ready["provider"], provider)
            # The address to dial pins the server's key, and a client can use it as printed.
            self.assertEqual(ready["dial"], [f"net:{ready['listening'][0]}~shs:{ready['peer']}"])
            client = self.write(provider + "-client.toml", client_auth)
            code, out, err = run("doc", "new", "--connect", ready["dial"][0], "--config", client,
                                 "--timeout", "10")
            self.assertEqual(code, 0, f"{provider}: {err}")
            self.assertTrue(out.startswith("portcullis:"), out)

    def test_a_provider_that_is_nowhere_is_refused_naming_every_folder_and_the_variable(self):
        elsewhere = os.path.join(self.dir, "my-plugins")
        config = self.node("s", '[auth]\nprovider = "shared-kee"\n')
        code, _, err = run("serve", "--config", config,
                           env=bare_env(PORTCULLIS_PLUGIN_PATH=elsewhere))
        self.assertEqual(code, 2, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(f"{config}:6: auth.provider: unknown auth provider 'shared-kee': no "
                      f"libportcullis-auth-shared-kee.so in {elsewhere}, ", err)
        if BUILD_ROOT:
            self.assertIn(os.path.join(BUILD_ROOT, "providers") + ", ", err)
            self.assertIn(os.path.join(BUILD_ROOT, "providers", "team") + ", ", err)
        self.assertIn("(built in: open); to add a folder, set PORTCULLIS_PLUGIN_PATH=DIR[:DIR...]",
                      err)

    def test_the_plugin_path_comes_before_the_builds_own_folders(self):
        # A folder on PORTCULLIS_PLUGIN_PATH with a broken shared-key plugin is tried first: the
        # error stops start-up, and the build's good plugin does not stand in for it.
        bad = os.path.join(self.dir, "bad-plugins")
        os.makedirs(bad)
        with open(os.path.join(bad, "libportcullis-auth-shared-key.so"), "w") as f:
            f.write("not an ELF file")
        config = self.node("s", self.shared_key_table("s"))
        code, _, err = run("serve", "--config", config, env=bare_env(PORTCULLIS_PLUGIN_PATH=bad))
        self.assertEqual(code, 2, err)
        self.assertIn(os.path.join(bad, "libportcullis-auth-shared-key.so") + ": cannot load: ",
                      err)

    @unittest.skipUnless(BUILD_ROOT and shutil.which("meson"), "needs meson and the build folder")
    def test_meson_devenv_puts_the_builds_plugin_folders_on_the_plugin_path(self):
        p = subprocess.run(["meson", "devenv", "-C", BUILD_ROOT, sys.executable, "-c",
                            "import os; print(os.environ.get('PORTCULLIS_PLUGIN_PATH', ''))"],
                           capture_output=True, text=True, timeout=60, env=bare_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        folders = p.stdout.strip().splitlines()[-1].split(":")
        self.assertIn(os.path.join(BUILD_ROOT, "providers"), folders)
        self.assertIn(os.path.join(BUILD_ROOT, "providers", "team"), folders)

    # --- ready lines -------------------------------------------------------------------------

    def test_the_human_ready_line_says_what_to_dial(self):
        s = self.serve(self.node("sk", self.shared_key_table("sk")), json_output=False)
        m = re.fullmatch(r"portcullis serve: listening on (127\.0\.0\.1:\d+) as ([0-9a-f]{64}) "
                         r"\(auth: shared-key\); clients dial (\S+)\n", s.ready)
        self.assertIsNotNone(m, s.ready)
        self.assertEqual(m.group(3), f"net:{m.group(1)}~shs:{m.group(2)}")
        # A provider that pins no key is dialed at HOST:PORT.
        o = self.serve(self.node("o", '[auth]\nprovider = "open"\n'), json_output=False)
        m = re.fullmatch(r"portcullis serve: listening on (127\.0\.0\.1:\d+) as \S+ "
                         r"\(auth: open\); clients dial (\S+)\n", o.ready)
        self.assertIsNotNone(m, o.ready)
        self.assertEqual(m.group(2), m.group(1))
        o2 = self.serve(self.node("o2", '[auth]\nprovider = "open"\n'))
        ready = json.loads(o2.ready)
        self.assertEqual(ready["dial"], ready["listening"])

    # --- no [auth], no server ---------------------------------------------------------------

    def test_serve_refuses_a_config_without_an_auth_table(self):
        config = self.node("s", "")
        code, out, err = run("serve", "--config", config)
        self.assertEqual(code, 2, err)
        self.assertEqual(out, "")
        self.assertEqual(err, f"portcullis: {config}: auth: missing: serve needs an explicit auth "
                              f"provider, e.g. [auth] provider = \"shared-key\" (also "
                              f"\"document-id\", \"team\", a plugin's name, or \"open\" for "
                              f"development without authentication)\n")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "s-data")))
        # Named, `open` is still there, with its warning.
        s = self.serve(self.node("o", '[auth]\nprovider = "open"\n'))
        self.assertEqual(json.loads(s.ready)["provider"], "open")

    def test_an_auth_table_without_a_provider_says_what_to_write(self):
        self.assert_config_error(
            '[network]\nlisten = "127.0.0.1:0"\n[storage]\npath = "d"\n[auth]\n',
            r":5: auth\.provider: missing \(required: the auth provider's name, e\.g\. "
            r"\"shared-key\"")

    # --- config errors: file, line and key --------------------------------------------------

    def test_listen_connect_and_storage_errors_name_file_line_and_key(self):
        storage = '[storage]\npath = "d"\n'
        auth = '[auth]\nprovider = "open"\n'
        self.assert_config_error(f'[network]\nlisten = "localhost"\n{storage}{auth}',
                                 r":2: network\.listen: 'localhost' is not HOST:PORT \(e\.g\. "
                                 r"127\.0\.0\.1:7420 or \[::1\]:7420\)\n$")
        self.assert_config_error(f'[network]\nlisten = "localhost:7420"\n{storage}{auth}',
                                 r":2: network\.listen: 'localhost:7420' is not an IP address "
                                 r"and port \(listen on e\.g\. 127\.0\.0\.1:7420, or "
                                 r"0\.0\.0\.0:7420 for every interface\)\n$")
        self.assert_config_error(
            f'[network]\nlisten = "127.0.0.1:0"\nconnect = [\n  "127.0.0.1:1",\n  "server2",\n]\n'
            f'{storage}{auth}',
            r":5: network\.connect\[1\]: 'server2' is not HOST:PORT")
        self.assert_config_error(
            f'[network]\nlisten = "127.0.0.1:0"\nconnect = ["net:127.0.0.1:1~shs:nokey"]\n'
            f'{storage}{auth}',
            r":3: network\.connect\[0\]: 'net:127\.0\.0\.1:1~shs:nokey' is not "
            r"net:HOST:PORT~shs:KEY \(KEY: ")
        # A storage folder whose parent does not exist: a failure (1), but it says where.
        missing = os.path.join(self.dir, "no", "such")
        self.assert_config_error(
            f'[network]\nlisten = "127.0.0.1:0"\n[storage]\npath = "{missing}/data"\n{auth}',
            r":4: storage\.path: " + re.escape(missing + "/data") + r": .+\n$", code=1)

    def test_a_listen_port_in_use_names_the_key(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            address = "127.0.0.1:%d" % taken.getsockname()[1]
            self.assert_config_error(
                f'[network]\nlisten = "{address}"\n[storage]\npath = "d"\n'
                f'[auth]\nprovider = "open"\n',
                r":2: network\.listen: cannot listen on " + re.escape(address) + r": Address "
                r"already in use\n$", code=1)

    # --- dials of the connect list -------------------------------------------------------------

    def test_failed_dials_are_logged_with_the_os_error_and_the_redial(self):
        target = free_address()
        s = self.serve(self.node("a", '[auth]\nprovider = "open"\n',
                                 network=f'listen = "127.0.0.1:0"\nconnect = ["{target}"]\n'))
        s.wait_for_log(r"warn\S* serve: dial " + re.escape(target) + r" failed \(1 in a row\): "
                       r"cannot connect to " + re.escape(target) + r": Connection refused; "
                       r"redialing in \d+\.\d s")
        s.wait_for_log(r"serve: dial " + re.escape(target) + r" failed \(2 in a row\)")
        # Once something listens there, the redial connects and says so.
        b = self.serve(self.node("b", '[auth]\nprovider = "open"\n',
                                 network=f'listen = "{target}"\n'))
        self.assertEqual(json.loads(b.ready)["listening"], [target])
        s.wait_for_log(r"serve: dial " + re.escape(target) + r": connected", timeout=20)
        # And when that peer goes away, the closed connection and the redial are logged.
        b.stop()
        s.wait_for_log(r"serve: dial " + re.escape(target) + r": connection closed; redialing "
                       r"in \d+\.\d s")


if __name__ == "__main__":
    unittest.main(verbosity=2)
